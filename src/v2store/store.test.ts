import { describe, expect, test } from "bun:test"
import { Backend } from "../backend/backend"
import { applyV2, decodeV2Request, encodeV2Request, v2Request } from "./apply"
import { V2Error } from "./errors"
import { eventToJson, type V2Event } from "./event"
import { ttlSeconds, V2Store } from "./store"
import { V2Table } from "./v2_table"

const T0 = 1_700_000_000_000

function fresh(now = () => T0): V2Store {
  return new V2Store(now)
}

function errorOf(f: () => unknown): ReturnType<V2Error["toJson"]> {
  try {
    f()
  } catch (e) {
    if (e instanceof V2Error) return e.toJson()
    throw e
  }
  throw new Error("no error")
}

describe("V2Store", () => {
  test("set() creates parents, answers with prevNode on replace, and get() lists without hidden keys", () => {
    const s = fresh()
    expect(eventToJson(s.set("/a/b", false, "1"))).toEqual({ action: "set", node: { key: "/a/b", value: "1", modifiedIndex: 1, createdIndex: 1 } })
    s.set("/a/_h", false, "x")
    const e = s.set("/a/b", false, "2")
    expect(eventToJson(e).prevNode).toEqual({ key: "/a/b", value: "1", modifiedIndex: 1, createdIndex: 1 })
    expect(eventToJson(s.get("/a", false, true))).toEqual({
      action: "get",
      node: { key: "/a", dir: true, nodes: [{ key: "/a/b", value: "2", modifiedIndex: 3, createdIndex: 3 }], modifiedIndex: 1, createdIndex: 1 },
    })
    expect(eventToJson(s.get("/a/_h", false, false)).node).toEqual({ key: "/a/_h", value: "x", modifiedIndex: 2, createdIndex: 2 })
    expect(eventToJson(s.get("/", false, false)).node).toEqual({ dir: true, nodes: [{ key: "/a", dir: true, modifiedIndex: 1, createdIndex: 1 }] })
  })

  test("errors carry etcd's codes, causes and the store index", () => {
    const s = fresh()
    s.set("/f", false, "v")
    s.set("/d", true, "")
    expect(errorOf(() => s.get("/nokey", false, false))).toEqual({ errorCode: 100, message: "Key not found", cause: "/nokey", index: 2 })
    expect(errorOf(() => s.set("/f/x", false, "v"))).toEqual({ errorCode: 104, message: "Not a directory", cause: "/f", index: 2 })
    expect(errorOf(() => s.set("/", false, "v"))).toEqual({ errorCode: 107, message: "Root is read only", cause: "/", index: 2 })
    expect(errorOf(() => s.set("/d", true, ""))).toEqual({ errorCode: 102, message: "Not a file", cause: "/d", index: 2 })
    expect(errorOf(() => s.create("/f", false, "v", false))).toEqual({ errorCode: 105, message: "Key already exists", cause: "/f", index: 2 })
    expect(errorOf(() => s.delete("/d", false, false))).toEqual({ errorCode: 102, message: "Not a file", cause: "/d", index: 2 })
    s.set("/d/_h", false, "1")
    expect(errorOf(() => s.delete("/d", true, false))).toEqual({ errorCode: 108, message: "Directory not empty", cause: "/d", index: 3 })
    expect(errorOf(() => s.compareAndSwap({ nodePath: "/f", prevValue: "x", prevIndex: 0, value: "y" }))).toEqual({ errorCode: 101, message: "Compare failed", cause: "[x != v]", index: 3 })
    expect(errorOf(() => s.compareAndSwap({ nodePath: "/f", prevValue: "x", prevIndex: 9, value: "y" })).cause).toBe("[x != v] [9 != 1]")
    expect(errorOf(() => s.compareAndDelete("/f", "", 9)).cause).toBe("[9 != 1]")
    expect(new V2Error(101, "", 0).status()).toBe(412)
    expect(new V2Error(104, "", 0).status()).toBe(400)
  })

  test("create(unique) makes in-order keys named by the store index", () => {
    const s = fresh()
    s.set("/x", false, "1")
    expect(s.create("/q", false, "a", true).node.key).toBe("/q/00000000000000000002")
    expect(s.create("/q", false, "b", true).node.key).toBe("/q/00000000000000000003")
  })

  test("update() keeps a directory's modified index; compareAndSwap() and compareAndDelete() check value and index", () => {
    const s = fresh()
    s.set("/d", true, "")
    const u = s.update("/d", "", { expireMs: T0 + 5000, refresh: false })
    expect(eventToJson(u)).toEqual({
      action: "update",
      node: { key: "/d", dir: true, expiration: "2023-11-14T22:13:25.000Z", ttl: 5, modifiedIndex: 2, createdIndex: 1 },
      prevNode: { key: "/d", dir: true, modifiedIndex: 1, createdIndex: 1 },
    })
    expect(s.get("/d", false, false).node.modifiedIndex).toBe(1)
    s.set("/k", false, "v")
    expect(s.compareAndSwap({ nodePath: "/k", prevValue: "v", prevIndex: 3, value: "w" }).node.value).toBe("w")
    expect(s.compareAndDelete("/k", "w", 0).action).toBe("compareAndDelete")
  })

  test("deleteExpired() removes keys at the SYNC time, oldest first, with expire events", () => {
    let now = T0
    const s = fresh(() => now)
    s.set("/a", false, "1", { expireMs: T0 + 2000, refresh: false })
    s.set("/d", true, "", { expireMs: T0 + 1000, refresh: false })
    s.set("/d/x", false, "2")
    expect(s.get("/a", false, false).node.ttl).toBe(2)
    now = T0 + 1500
    expect(s.get("/a", false, false).node.ttl).toBe(1)
    expect(s.hasTtlKeys()).toBe(true)
    expect(s.deleteExpired(T0 + 999)).toEqual([])
    const gone = s.deleteExpired(T0 + 2000).map((e) => [e.action, e.node.key, e.node.modifiedIndex])
    expect(gone).toEqual([["expire", "/d", 4], ["expire", "/a", 5]])
    expect(s.hasTtlKeys()).toBe(false)
    expect(errorOf(() => s.get("/d/x", false, false)).errorCode).toBe(100)
  })

  test("refresh keeps the value and is not sent to watchers", () => {
    const s = fresh()
    s.set("/k", false, "v", { expireMs: T0 + 1000, refresh: false })
    const seen: V2Event[] = []
    const w = s.watch("/k", false, true, 0)
    w.onEvent = (e) => e && seen.push(e)
    expect(s.set("/k", false, "", { expireMs: T0 + 9000, refresh: true }).node.value).toBe("v")
    s.update("/k", "z")
    expect(seen.map((e) => e.action)).toEqual(["update"])
  })
})

describe("WatcherHub", () => {
  test("a watch from a past index gets the first matching event; recursive watches see children but not hidden ones", () => {
    const s = fresh()
    s.set("/d/a", false, "1")
    s.set("/d/b", false, "2")
    expect(s.watch("/d/b", false, false, 1).pending.map((e) => e.node.key)).toEqual(["/d/b"])
    expect(s.watch("/d", true, false, 1).pending.map((e) => e.node.key)).toEqual(["/d/a"])
    const seen: string[] = []
    const w = s.watch("/d", true, true, 0)
    w.onEvent = (e) => e && seen.push(`${e.action} ${e.node.key}`)
    s.set("/d/_h", false, "x")
    s.set("/d/c", false, "3")
    s.delete("/d", true, true)
    // etcd 3.4 sends a stream watcher on a deleted directory its delete twice (once per removed path, once for the key)
    expect(seen).toEqual(["set /d/c", "delete /d", "delete /d"])
    w.remove()
    expect(s.hub.count()).toBe(0)
  })

  test("deleting a directory notifies watchers of the keys under it", () => {
    const s = fresh()
    s.set("/d/a", false, "1")
    const w = s.watch("/d/a", false, false, 0)
    const seen: string[] = []
    w.onEvent = (e) => e && seen.push(`${e.action} ${e.node.key}`)
    s.delete("/d", true, true)
    expect(seen).toEqual(["delete /d"])
  })

  test("the history keeps 1000 events: an older waitIndex is refused with 401", () => {
    const s = fresh()
    for (let i = 0; i < 1005; i++) s.set("/k", false, String(i))
    expect(errorOf(() => s.watch("/k", false, false, 3))).toEqual({
      errorCode: 401,
      message: "The event in requested index is outdated and cleared",
      cause: "the requested history has been cleared [6/3]",
      index: 1005,
    })
    expect(s.watch("/k", false, false, 6).pending[0]?.node.value).toBe("5")
  })
})

describe("V2Table", () => {
  test("the tree and the store index survive a reopen of the backend", () => {
    const backend = Backend.open({ path: ":memory:" })
    const s = new V2Store(() => T0, new V2Table(backend))
    s.set("/a/b", false, "1")
    s.set("/a/c", false, "2", { expireMs: T0 + 1000, refresh: false })
    s.set("/x/y/z", false, "3")
    s.delete("/x", true, true)
    backend.commit()
    const again = new V2Store(() => T0, new V2Table(backend))
    expect(again.currentIndex()).toBe(4)
    expect(eventToJson(again.get("/", true, true))).toEqual(eventToJson(s.get("/", true, true)))
    expect(again.hasTtlKeys()).toBe(true)
    // The event window came back too: a watch from a past index answers at once.
    expect(eventToJson(again.watch("/a/c", false, false, 2).pending[0]!)).toEqual(eventToJson(s.watch("/a/c", false, false, 2).pending[0]!))
  })
})

describe("applyV2", () => {
  test("a request survives its codec and applies PUT prevExist, POST, DELETE prevValue, QGET and SYNC", () => {
    const s = fresh()
    const r = (f: Parameters<typeof v2Request>[0]) => applyV2(s, decodeV2Request(encodeV2Request(v2Request(f))))
    expect(r({ method: "PUT", path: "/k", val: "1", prevExist: true })).toEqual({ error: { errorCode: 100, message: "Key not found", cause: "/k", index: 0 } })
    expect("event" in r({ method: "PUT", path: "/k", val: "1", prevExist: false, expireMs: T0 + 1 })).toBe(true)
    expect(r({ method: "PUT", path: "/k", val: "2", prevExist: false })).toMatchObject({ error: { errorCode: 105 } })
    expect(r({ method: "POST", path: "/q", val: "a" })).toMatchObject({ event: { action: "create" } })
    expect(r({ method: "DELETE", path: "/q", prevValue: "a" })).toMatchObject({ error: { errorCode: 102 } })
    expect(r({ method: "QGET", path: "/k" })).toMatchObject({ event: { action: "get" } })
    expect(r({ method: "SYNC", timeMs: T0 + 1 })).toEqual({ expired: 1 })
  })

  test("ttlSeconds() rounds up as etcd", () => {
    expect([ttlSeconds(5000), ttlSeconds(4001), ttlSeconds(1), ttlSeconds(0), ttlSeconds(-1500)]).toEqual([5, 5, 1, 0, -1])
  })
})
