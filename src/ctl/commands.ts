// The command table of `tskv ctl`: etcdctl's command words -> implementation.
import * as auth from "./cmd_auth"
import { checkDatascale, checkPerf } from "./cmd_check"
import * as cluster from "./cmd_cluster"
import * as conc from "./cmd_concurrency"
import * as kv from "./cmd_kv"
import * as lease from "./cmd_lease"
import * as v2 from "./cmd_v2"
import { makeMirror } from "./cmd_mirror"
import { watchCommand } from "./cmd_watch"
import type { Command } from "./context"

export const commands: Record<string, Command> = {
  get: kv.getCommand,
  put: kv.putCommand,
  del: kv.delCommand,
  txn: kv.txnCommand,
  compaction: kv.compactionCommand,
  "lease grant": lease.leaseGrant,
  "lease revoke": lease.leaseRevoke,
  "lease timetolive": lease.leaseTimeToLive,
  "lease list": lease.leaseList,
  "lease keep-alive": lease.leaseKeepAlive,
  "member list": cluster.memberList,
  "member add": cluster.memberAdd,
  "member remove": cluster.memberRemove,
  "member update": cluster.memberUpdate,
  "member promote": cluster.memberPromote,
  "endpoint health": cluster.endpointHealth,
  "endpoint status": cluster.endpointStatus,
  "endpoint hashkv": cluster.endpointHashKV,
  "alarm list": cluster.alarmList,
  "alarm disarm": cluster.alarmDisarm,
  defrag: cluster.defrag,
  "move-leader": cluster.moveLeader,
  "snapshot save": cluster.snapshotSave,
  version: cluster.version,
  watch: watchCommand,
  "make-mirror": makeMirror,
  "check perf": checkPerf,
  "check datascale": checkDatascale,
  lock: conc.lockCommand,
  elect: conc.electCommand,
  "auth enable": auth.authEnable,
  "auth disable": auth.authDisable,
  "user add": auth.userAdd,
  "user delete": auth.userDelete,
  "user get": auth.userGet,
  "user list": auth.userList,
  "user passwd": auth.userPasswd,
  "user grant-role": auth.userGrantRole,
  "user revoke-role": auth.userRevokeRole,
  "role add": auth.roleAdd,
  "role delete": auth.roleDelete,
  "role get": auth.roleGet,
  "role list": auth.roleList,
  "role grant-permission": auth.roleGrantPermission,
  "role revoke-permission": auth.roleRevokePermission,
  // the v2 verbs, mapped onto v3 (see cmd_v2.ts)
  set: v2.v2Set,
  mk: v2.v2Mk,
  mkdir: v2.v2Mkdir,
  ls: v2.v2Ls,
  rm: v2.v2Rm,
  rmdir: v2.v2Rmdir,
  update: v2.v2Update,
  "exec-watch": v2.v2ExecWatch,
  "cluster-health": v2.v2ClusterHealth,
}
