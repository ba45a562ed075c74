// sd_notify(3) for a systemd `Type=notify` unit: READY=1 once the member serves
// (etcd sends it when its ReadyNotify fires, after publishing its attributes),
// STOPPING=1 when it begins to shut down. Without $NOTIFY_SOCKET nothing is sent.

import type { Logger } from "../lib/logger"
import { UnixDatagramSender } from "../lib/unix_datagram"

export type NotifyResult = "sent" | "no-socket"

/** Sends one sd_notify state ("READY=1", "STOPPING=1") to $NOTIFY_SOCKET; throws when the socket cannot take it. */
export function sdNotify(state: string, env: Record<string, string | undefined> = process.env): NotifyResult {
  const path = env.NOTIFY_SOCKET
  if (path === undefined || path === "") return "no-socket"
  const sender = new UnixDatagramSender(path)
  try {
    sender.send(new TextEncoder().encode(state))
  } finally {
    sender.close()
  }
  return "sent"
}

/** etcd's notifySystemd: READY=1, logged; a failure is logged and does not stop the member. */
export function notifySystemdReady(logger: Logger, env: Record<string, string | undefined> = process.env): void {
  if (env.NOTIFY_SOCKET === undefined || env.NOTIFY_SOCKET === "") return
  logger.info("notifying init daemon")
  try {
    sdNotify("READY=1", env)
    logger.info("successfully notified init daemon")
  } catch (e) {
    logger.error("failed to notify systemd for readiness", { error: e instanceof Error ? e.message : String(e) })
  }
}

/** STOPPING=1 at the start of a shutdown (systemd then waits for the exit, not for a timeout). */
export function notifySystemdStopping(logger: Logger, env: Record<string, string | undefined> = process.env): void {
  try {
    sdNotify("STOPPING=1", env)
  } catch (e) {
    logger.warn("failed to notify systemd of the shutdown", { error: e instanceof Error ? e.message : String(e) })
  }
}
