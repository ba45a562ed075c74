// etcdserverpb.Watch: one bidi stream carries many watchers. Create, cancel
// and progress requests go to the mvcc WatchStream; its responses go out with
// the member's header. Flow control: when the HTTP/2 stream's buffer is full
// the mvcc stream is told to stop (it parks, and catches up from history
// after drain), so a slow client never grows the member's memory.

import * as perms from "../../../auth/request_perms"
import { isTskvError, TskvError } from "../../../lib/errors"
import type { WatchResponse as MvccWatchResponse } from "../../../mvcc/watchable_store"
import * as pb from "../../../pb"
import type { EtcdServer } from "../../../server/server"
import { statusOfError } from "../errors"
import { type GrpcServer, grpcCodeNames } from "../../../h2grpc"
import { admit, callerAuth } from "./context"

export function registerWatchService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addBidi(pb.WatchService.Watch, (call) => {
    try {
      // the token is read at each create request
      admit(server, call, { token: "ignored" })
    } catch (e) {
      call.end(e)
      return
    }
    const requireLeader = call.header("hasleader") === "true"
    const send = (r: MvccWatchResponse): boolean => {
      if (call.ended) return true
      // etcd 3.4 cancels a watcher of a compacted revision with a header at revision 0 and no reason
      if (r.canceled && r.compactRevision > 0) return call.write({ ...r, cancelReason: "", header: server.header(0) })
      return call.write({ ...r, header: server.header(r.header.revision) })
    }
    const stream = server.watchable.newStream(send)
    call.onDrain(() => stream.resume())
    const leaderListener = (): void => {
      // etcd cancels the watch streams of a leaderless member when the client asked for a leader.
      if (requireLeader && !server.hasLeader()) call.end(new TskvError("noLeader"))
    }
    const unsubscribe = server.onLeaderLost(leaderListener)
    const close = (): void => {
      unsubscribe()
      stream.close()
    }
    call.onCancel(close)
    // A client that stops sending still gets its events (etcd keeps the stream; the JSON gateway
    // half-closes right after the create request). The watchers go when the client cancels.
    call.onHalfClose(() => {})
    call.onMessage((req: pb.WatchRequest) => {
      if (req.createRequest) {
        const c = req.createRequest
        try {
          // Who the caller is now (etcd reads the stream's token at every create):
          // a simple token follows auth changes made since the stream opened.
          if (server.auth) perms.checkWatch(server.auth, callerAuth(server, call), c)
        } catch (e) {
          // etcd 3.4 sends the gRPC status text of the error as the cancel reason.
          const status = statusOfError(e)
          const reason = isTskvError(e) ? `rpc error: code = ${grpcCodeNames[status.code]} desc = ${status.message}` : String(e)
          call.write({ header: server.header(), watchId: -1, created: true, canceled: true, cancelReason: reason })
          return
        }
        stream.watch(c)
      } else if (req.cancelRequest) {
        stream.cancel(req.cancelRequest.watchId)
      } else if (req.progressRequest) {
        stream.requestProgress()
      }
    })
  })
}
