import { describe, expect, test } from "bun:test"
import { Backend } from "../backend/backend"
import { simpleMatch, V2Auth } from "./auth"

describe("V2Auth", () => {
  test("apply() needs a root user to enable, makes the guest role, and counts etcd's store writes", () => {
    const a = new V2Auth()
    expect(a.apply({ op: "enable" })).toEqual({ status: 409, message: "auth: No root user available, please create one" })
    // The first change also makes etcd's /2 directories (4 writes).
    expect(a.apply({ op: "putUser", name: "root", password: "h" })).toBe(5)
    expect(a.user("root")?.roles).toEqual(["root"])
    expect(a.apply({ op: "enable" })).toBe(2)
    expect(a.role("guest")).toEqual({ read: ["/*"], write: ["/*"] })
    expect(a.apply({ op: "deleteUser", name: "root" })).toEqual({ status: 409, message: "auth: Cannot delete root user while auth is enabled." })
    expect(a.apply({ op: "putRole", name: "root" })).toEqual({ status: 409, message: "auth: Cannot modify role root: is root role." })
  })

  test("hasAccess() follows the roles' globs; the guest role serves requests without a user", () => {
    const a = new V2Auth()
    a.apply({ op: "putRole", name: "reader", grant: { read: ["/app/*"], write: ["/app/w"] } })
    a.apply({ op: "putUser", name: "alice", password: "h", roles: ["reader"] })
    expect(a.hasAccess("alice", "/app/x", false)).toBe(true)
    expect(a.hasAccess("alice", "/app/x", true)).toBe(false)
    expect(a.hasAccess("alice", "/app/w", true)).toBe(true)
    expect(a.hasAccess("alice", "/other", false)).toBe(false)
    expect(a.hasAccess(undefined, "/app/x", false)).toBe(false)
    a.apply({ op: "putUser", name: "alice", revoke: ["reader"] })
    expect(a.hasAccess("alice", "/app/x", false)).toBe(false)
    expect(a.apply({ op: "putUser", name: "alice", revoke: ["reader"] })).toEqual({ status: 409, message: "auth: Revoking ungranted role reader for user alice" })
    expect([simpleMatch("/a*", "/ab"), simpleMatch("/a", "/ab"), simpleMatch("/a", "/a")]).toEqual([true, false, true])
  })

  test("the state survives a reload from the backend", () => {
    const backend = Backend.open({ path: ":memory:" })
    const a = new V2Auth(backend)
    a.apply({ op: "putUser", name: "root", password: "h" })
    a.apply({ op: "enable" })
    backend.commit()
    const again = new V2Auth(backend)
    expect(again.isEnabled()).toBe(true)
    expect(again.userNames()).toEqual(["root"])
    expect(again.roleNames()).toEqual(["guest", "root"])
  })
})
