// A small language for multi-member raft scenarios (src/raft/testdata/*.txt),
// in the spirit of etcd-io/raft's datadriven tests. A file is a list of
// blocks:
//
//   # comment
//   <command> <args...>
//   ----
//   <expected output, up to a blank line>
//
// Commands:
//   cluster voters=1,2,3 [learners=4] [prevote=false] [checkquorum=false] [maxinflight=n] [maxsize=n]
//   add-member <id>                 an empty member that will join (not in the initial configuration)
//   campaign <id> | tick <id> [n] | tick-all [n]  (tick-all delivers after every tick)
//   propose <id> <data> | propose-conf <id> add|remove|add-learner <target>
//   read-index <id> <ctx> | transfer <leader> <transferee> | compact <id> | restart <id>
//   report-snapshot <leader> <id> ok|fail | report-unreachable <leader> <id>
//   process                         run every member's Ready loop (queue messages)
//   deliver [type...]               deliver the queued messages (of these types) once, print them
//   stabilize                       process and deliver until quiet, print every message
//   drop                            forget every queued message
//   isolate <id> | cut <a>-><b> | heal
//   status | log <id> | applied <id> | read-states <id>
// Every command prints its output; errors print "error: <message>".

import { assert } from "../../src/lib/assert"
import { decodeConfChange } from "../../src/raft/conf_change_codec"
import { describeMessage, TestCluster } from "./raft_test_cluster"
import type { Message, NodeId } from "../../src/raft/types"
import { ConfChangeType, EntryType, MessageType, StateType } from "../../src/raft/types"

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

export interface Block {
  line: number
  command: string
  expected: string
}

export function parseScenario(text: string): Block[] {
  const lines = text.split("\n")
  const blocks: Block[] = []
  let k = 0
  while (k < lines.length) {
    const line = lines[k]!
    if (line.trim() === "" || line.startsWith("#")) {
      k++
      continue
    }
    const start = k + 1
    const command = line.trim()
    k++
    assert(lines[k] === "----", () => `line ${k + 1}: expected ---- after command "${command}"`)
    k++
    const out: string[] = []
    while (k < lines.length && lines[k] !== "") out.push(lines[k++]!)
    blocks.push({ line: start, command, expected: out.join("\n") })
  }
  return blocks
}

const STATE_NAMES: Record<StateType, string> = {
  [StateType.Follower]: "follower",
  [StateType.Candidate]: "candidate",
  [StateType.Leader]: "leader",
  [StateType.PreCandidate]: "pre-candidate",
}

export class ScenarioRunner {
  private cluster: TestCluster | undefined

  private c(): TestCluster {
    assert(this.cluster !== undefined, "no cluster yet: start with `cluster voters=...`")
    return this.cluster
  }

  run(command: string): string {
    try {
      return this.exec(command.split(/\s+/))
    } catch (e) {
      return `error: ${e instanceof Error ? e.message : String(e)}`
    }
  }

  private exec(words: string[]): string {
    const [cmd, ...args] = words
    const id = (k: number): NodeId => BigInt(args[k] ?? "0")
    switch (cmd) {
      case "cluster": {
        const opts = new Map(args.map((a) => a.split("=") as [string, string]))
        const ids = (key: string): NodeId[] => (opts.get(key) ?? "").split(",").filter((s) => s !== "").map((s) => BigInt(s))
        this.cluster = new TestCluster({
          voters: ids("voters"),
          learners: ids("learners"),
          member: {
            preVote: opts.get("prevote") !== "false",
            checkQuorum: opts.get("checkquorum") !== "false",
            ...(opts.has("maxinflight") ? { maxInflightMsgs: Number(opts.get("maxinflight")) } : {}),
            ...(opts.has("maxsize") ? { maxSizePerMsgBytes: Number(opts.get("maxsize")) } : {}),
          },
        })
        this.c().process()
        this.c().queue = []
        return "ok"
      }
      case "add-member":
        this.c().addMember(id(0), false)
        return "ok"
      case "campaign":
        this.c().member(id(0)).node.campaign()
        return this.stateLine(id(0))
      case "tick": {
        const n = Number(args[1] ?? "1")
        this.c().tick(id(0), n)
        return this.stateLine(id(0))
      }
      case "tick-all": {
        const n = Number(args[0] ?? "1")
        for (let k = 0; k < n; k++) {
          for (const m of this.c().members.keys()) this.c().tick(m)
          this.c().stabilize()
        }
        return this.status()
      }
      case "propose":
        this.c().member(id(0)).node.propose(enc(args[1] ?? ""))
        return "ok"
      case "propose-conf": {
        const types: Record<string, ConfChangeType> = {
          add: ConfChangeType.AddNode,
          remove: ConfChangeType.RemoveNode,
          "add-learner": ConfChangeType.AddLearnerNode,
        }
        const type = types[args[1] ?? ""]
        assert(type !== undefined, `unknown conf change ${args[1]}`)
        this.c().member(id(0)).node.proposeConfChange({ type, nodeId: id(2), context: new Uint8Array(0) })
        return "ok"
      }
      case "read-index":
        this.c().member(id(0)).node.readIndex(enc(args[1] ?? ""))
        return "ok"
      case "transfer":
        this.c().member(id(0)).node.transferLeader(id(1))
        return "ok"
      case "compact": {
        const m = this.c().member(id(0))
        m.compact()
        return `first index ${m.storage.firstIndex()}`
      }
      case "restart":
        this.c().restart(id(0))
        return this.stateLine(id(0))
      case "report-snapshot":
        this.c().member(id(0)).node.reportSnapshot(id(1), args[2] === "ok")
        return "ok"
      case "report-unreachable":
        this.c().member(id(0)).node.reportUnreachable(id(1))
        return "ok"
      case "process":
        this.c().process()
        return this.c().queue.map(describeMessage).join("\n") || "(no messages)"
      case "deliver": {
        const types = new Set(args.map((a) => MessageType[a as keyof typeof MessageType]))
        const delivered = this.c().deliver((m: Message) => types.size === 0 || types.has(m.type))
        this.c().process()
        return delivered.map(describeMessage).join("\n") || "(no messages)"
      }
      case "stabilize":
        return this.c().stabilize().map(describeMessage).join("\n") || "(no messages)"
      case "drop":
        this.c().queue = []
        return "ok"
      case "isolate":
        this.c().isolate(id(0))
        return "ok"
      case "cut": {
        this.c().cut.add(args[0] ?? "")
        return "ok"
      }
      case "heal":
        this.c().heal()
        return "ok"
      case "status":
        return this.status()
      case "log": {
        const r = this.c().member(id(0)).node.raft
        const lo = r.log.firstIndex()
        const ents = r.log.slice(lo, r.log.lastIndex() + 1, Number.POSITIVE_INFINITY)
        const text = ents.map((e) => {
          if (e.type === EntryType.ConfChange) {
            const cc = decodeConfChange(e.data)
            return `${e.term}/${e.index} ${ConfChangeType[cc.type]} ${cc.nodeId}`
          }
          return `${e.term}/${e.index} ${e.data.length > 0 ? dec(e.data) : "(empty)"}`
        })
        return [`first=${lo} committed=${r.log.committed}`, ...text].join("\n")
      }
      case "applied": {
        const m = this.c().member(id(0))
        return `index=${m.appliedIndex} data=[${m.applied.join(" ")}]`
      }
      case "read-states":
        return this.c().member(id(0)).readStates.map((r) => `ctx=${r.ctx} index=${r.index}`).join("\n") || "(none)"
      default:
        throw new Error(`unknown command ${cmd}`)
    }
  }

  private stateLine(id: NodeId): string {
    const m = this.c().member(id)
    const r = m.node.raft
    const cfg = `voters=${[...r.voters].sort().join(",")}${r.learners.size > 0 ? ` learners=${[...r.learners].sort().join(",")}` : ""}`
    return `${id}: ${STATE_NAMES[r.state]} term=${r.term} lead=${r.lead} last=${r.log.lastIndex()} commit=${r.log.committed} applied=${m.appliedIndex} ${cfg}`
  }

  private status(): string {
    return [...this.c().members.keys()].sort().map((id) => this.stateLine(id)).join("\n")
  }
}
