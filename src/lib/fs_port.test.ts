import { afterEach, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { isFsError, mkdirDurable, nodeFsPort, writeFileAtomic } from "./fs_port"

const dirs: string[] = []
function temp(): string {
  const dir = mkdtempSync(`${tmpdir()}/tskv-fsport-`)
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe("nodeFsPort", () => {
  test("nodeFsPort FileHandle writes at positions, preallocates zeros and truncates", () => {
    const dir = temp()
    const file = nodeFsPort.open(`${dir}/f`, "create")
    file.write(new Uint8Array([1, 2, 3]), 0)
    file.preallocate(4096)
    expect(file.size()).toBe(4096)
    file.write(new Uint8Array([9]), 10)
    file.fdatasync()
    const bytes = nodeFsPort.readFile(`${dir}/f`)
    expect(bytes.length).toBe(4096)
    expect([...bytes.subarray(0, 12)]).toEqual([1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 9, 0])
    file.truncate(5)
    file.preallocate(100)
    const buffer = new Uint8Array(20)
    expect(file.read(buffer, 0)).toBe(20)
    expect([...buffer.subarray(0, 12)]).toEqual([1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    file.close()
    expect(statSync(`${dir}/f`).size).toBe(100)
  })

  test("nodeFsPort open 'create' refuses an existing file with EEXIST", () => {
    const dir = temp()
    nodeFsPort.open(`${dir}/f`, "create").close()
    let error: unknown
    try {
      nodeFsPort.open(`${dir}/f`, "create")
    } catch (e) {
      error = e
    }
    expect(isFsError(error, "EEXIST")).toBe(true)
  })

  test("nodeFsPort tryLock takes an exclusive flock until close", () => {
    const dir = temp()
    const a = nodeFsPort.open(`${dir}/f`, "create")
    const b = nodeFsPort.open(`${dir}/f`, "write")
    expect(a.tryLock()).toBe(true)
    expect(b.tryLock()).toBe(false)
    a.close()
    expect(b.tryLock()).toBe(true)
    b.close()
  })

  test("writeFileAtomic() and mkdirDurable() write a file under new directories", () => {
    const dir = temp()
    mkdirDurable(nodeFsPort, `${dir}/x/y`)
    writeFileAtomic(nodeFsPort, `${dir}/x/y/f`, new Uint8Array([4, 5]))
    expect([...nodeFsPort.readFile(`${dir}/x/y/f`)]).toEqual([4, 5])
    expect(nodeFsPort.readdir(`${dir}/x/y`)).toEqual(["f"])
    expect(nodeFsPort.stat(`${dir}/x`).isDirectory).toBe(true)
  })
})
