// The expected texts were measured on etcd 3.4.23's gateway (go1.19.8) with curl.
import { expect, test } from "bun:test"
import type { LeaseKeepAliveRequest, RangeRequest, TxnRequest, WatchRequest } from "../../pb"
import { decodeRequest, decodeStdBase64, type JsonNode, StreamingBodyDecoder } from "./gateway_json"

/** json.Decoder over a whole body: next() is the next value, or undefined at its end. */
class BodyDecoder {
  private readonly decoder = new StreamingBodyDecoder()

  constructor(text: string) {
    this.decoder.push(text)
    this.decoder.end()
  }

  next(): JsonNode | undefined {
    const node = this.decoder.next()
    return node === "more" ? undefined : node
  }
}

function range(body: string): RangeRequest {
  return decodeRequest<RangeRequest>("etcdserverpb.RangeRequest", new BodyDecoder(body).next())
}

function errorOf(decode: () => unknown): string {
  try {
    decode()
  } catch (e) {
    return (e as Error).message
  }
  return "decoded"
}

const rangeError = (body: string): string => errorOf(() => range(body))

test("64-bit integers are exact as numbers and as strings", () => {
  const read = (body: string): bigint => decodeRequest<LeaseKeepAliveRequest>("etcdserverpb.LeaseKeepAliveRequest", new BodyDecoder(body).next()).ID
  expect(read('{"ID":5925524374510888774}')).toBe(5925524374510888774n)
  expect(read('{"ID":"5925524374510888774"}')).toBe(5925524374510888774n)
  expect(read('{"ID":" 5925524374510888774"}')).toBe(5925524374510888774n)
  expect(read('{"ID":9223372036854775807}')).toBe(9223372036854775807n)
  expect(read('{"ID":-9223372036854775808}')).toBe(-9223372036854775808n)
  expect(read('{"ID":-0}')).toBe(0n)
  expect(range('{"key":"Zm9v","limit":"12","revision":7}')).toMatchObject({ limit: 12, revision: 7 })
})

test("field names: proto or lowerCamelCase (camelCase wins), unknown ones ignored, null leaves unset, the last duplicate wins", () => {
  expect(range('{"key":"Zm9v","keys_only":true,"countOnly":true}')).toMatchObject({ keysOnly: true, countOnly: true })
  expect(range('{"key":"Zm9v","keys_only":1,"keysOnly":true}').keysOnly).toBe(true)
  expect(range('{"key":"Zm9v","nope":[1,{"x":2}]}').key).toEqual(new Uint8Array(Buffer.from("foo")))
  expect(range('{"key":null,"limit":null,"sort_order":null}')).toMatchObject({ key: new Uint8Array(0), limit: 0, sortOrder: 0 })
  expect(Buffer.from(range('{"key":"Zm9v","key":"YQ=="}').key).toString()).toBe("a")
})

test("enums by name or number; bytes from standard base64 or a list of numbers", () => {
  expect(range('{"key":"Zm9v","sort_order":"DESCEND","sortTarget":2}')).toMatchObject({ sortOrder: 2, sortTarget: 2 })
  expect(range('{"key":"Zm9v","sort_order":7}').sortOrder).toBe(7)
  expect(Buffer.from(range('{"key":[97,98]}').key).toString()).toBe("ab")
  expect(Buffer.from(decodeStdBase64("Zm9v+/==")).toString("base64")).toBe("Zm9v+w==")
  expect(Buffer.from(decodeStdBase64("Zm\n9v")).toString()).toBe("foo")
  const watch = decodeRequest<WatchRequest>("etcdserverpb.WatchRequest", new BodyDecoder('{"create_request":{"key":"YQ==","filters":["NOPUT",1]}}').next())
  expect(watch.createRequest?.filters).toEqual([0, 1])
})

test("wrong types and bad base64 are etcd's messages", () => {
  expect(rangeError('{"key":5}')).toBe("json: cannot unmarshal number into Go value of type []uint8")
  expect(rangeError('{"key":["a"]}')).toBe("json: cannot unmarshal string into Go value of type uint8")
  expect(rangeError('{"key":[256]}')).toBe("json: cannot unmarshal number 256 into Go value of type uint8")
  expect(rangeError("[]")).toBe("json: cannot unmarshal array into Go value of type map[string]json.RawMessage")
  expect(rangeError('"str"')).toBe("json: cannot unmarshal string into Go value of type map[string]json.RawMessage")
  expect(rangeError('{"key":"Zm9v","limit":1.5}')).toBe("json: cannot unmarshal number 1.5 into Go value of type int64")
  expect(rangeError('{"key":"Zm9v","limit":"1e2"}')).toBe("json: cannot unmarshal number 1e2 into Go value of type int64")
  expect(rangeError('{"key":"Zm9v","limit":99999999999999999999}')).toBe("json: cannot unmarshal number 99999999999999999999 into Go value of type int64")
  expect(rangeError('{"key":"Zm9v","limit":true}')).toBe("json: cannot unmarshal bool into Go value of type int64")
  expect(rangeError('{"key":"Zm9v","limit":"abc"}')).toBe("invalid character 'a' looking for beginning of value")
  expect(rangeError('{"key":"Zm9v","limit":"\\u0031"}')).toBe("invalid character '\\\\' looking for beginning of value")
  expect(rangeError('{"key":"Zm9v","limit":"-"}')).toBe("invalid character ' ' in numeric literal")
  expect(rangeError('{"key":"Zm9v","limit":""}')).toBe("unexpected end of JSON input")
  expect(rangeError('{"key":"Zm9v","keys_only":"true"}')).toBe("json: cannot unmarshal string into Go value of type bool")
  expect(rangeError('{"key":"Zm9v","sort_order":true}')).toBe("json: cannot unmarshal bool into Go value of type etcdserverpb.RangeRequest_SortOrder")
  expect(rangeError('{"key":"Zm9v","sort_order":"2"}')).toBe('unknown value "2" for enum etcdserverpb.RangeRequest_SortOrder')
  expect(rangeError('{"key":"Zm9v_-"}')).toBe("illegal base64 data at input byte 4")
  expect(rangeError('{"key":"Zm9"}')).toBe("illegal base64 data at input byte 0")
  const txn = (body: string): string => errorOf(() => decodeRequest<TxnRequest>("etcdserverpb.TxnRequest", new BodyDecoder(body).next()))
  expect(txn('{"compare":{}}')).toBe("json: cannot unmarshal object into Go value of type []json.RawMessage")
  expect(txn('{"compare":[1]}')).toBe("json: cannot unmarshal number into Go value of type map[string]json.RawMessage")
  expect(txn('{"success":[{"request_put":"x"}]}')).toBe("json: cannot unmarshal string into Go value of type map[string]json.RawMessage")
})

test("syntax errors are Go's json.Decoder messages", () => {
  expect(rangeError("{")).toBe("unexpected EOF")
  expect(rangeError('{"key":"Zm9v"')).toBe("unexpected EOF")
  expect(rangeError('{"key":-')).toBe("unexpected EOF")
  expect(rangeError("x")).toBe("invalid character 'x' looking for beginning of value")
  expect(rangeError('{"key":"Zm9v",}')).toBe("invalid character '}' looking for beginning of object key string")
  expect(rangeError("{key:1}")).toBe("invalid character 'k' looking for beginning of object key string")
  expect(rangeError('{"key" 1}')).toBe("invalid character '1' after object key")
  expect(rangeError('{"key":1 2}')).toBe("invalid character '2' after object key:value pair")
  expect(rangeError('{"key":[1 2]}')).toBe("invalid character '2' after array element")
  expect(rangeError('{"key":tru}')).toBe("invalid character '}' in literal true (expecting 'e')")
  expect(rangeError('{"key":1.}')).toBe("invalid character '}' after decimal point in numeric literal")
  expect(rangeError('{"key":1e}')).toBe("invalid character '}' in exponent of numeric literal")
  expect(rangeError('{"key":"a\\qb"}')).toBe("invalid character 'q' in string escape code")
  expect(rangeError('{"key":"\\u00"}')).toBe("invalid character '\"' in \\u hexadecimal character escape")
  expect(rangeError('{"key":"a\nb"}')).toBe("invalid character '\\n' in string literal")
})

test("a body is a sequence of values: empty is none, trailing text is left for the next read", () => {
  expect(new BodyDecoder(" \n").next()).toBeUndefined()
  const decoder = new BodyDecoder('{"ID":1}{"ID":"2"} {"ID":3}garbage')
  const ids: bigint[] = []
  for (let i = 0; i < 3; i++) ids.push(decodeRequest<LeaseKeepAliveRequest>("etcdserverpb.LeaseKeepAliveRequest", decoder.next()).ID)
  expect(ids).toEqual([1n, 2n, 3n])
  expect(() => decoder.next()).toThrow("invalid character 'g' looking for beginning of value")
  expect(range('{"key":"Zm9v"} garbage').key.length).toBe(3)
})

test("a body that arrives in pieces: each value once complete, whatever the cuts; syntax errors as soon as seen", () => {
  const body = '{"ID":5925524374510888774}\n{"ID":"2"} {"ID":3}'
  const ids = (pieces: string[]): (string | bigint)[] => {
    const decoder = new StreamingBodyDecoder()
    const out: (string | bigint)[] = []
    const drain = (): void => {
      for (;;) {
        const node = decoder.next()
        if (node === "more" || node === undefined) return
        out.push(decodeRequest<LeaseKeepAliveRequest>("etcdserverpb.LeaseKeepAliveRequest", node).ID)
      }
    }
    for (const piece of pieces) {
      decoder.push(piece)
      drain()
      out.push("|")
    }
    decoder.end()
    drain()
    return out
  }
  const want = [5925524374510888774n, 2n, 3n]
  for (let cut = 0; cut <= body.length; cut++) expect(ids([body.slice(0, cut), body.slice(cut)]).filter((x) => x !== "|")).toEqual(want)
  // a value is handed on as soon as its last byte arrives, before the body ends
  expect(ids(['{"ID":1', "}", ' {"ID":2}'])).toEqual(["|", 1n, "|", 2n, "|"])
  const decoder = new StreamingBodyDecoder()
  decoder.push('{"ID":1} 12')
  expect(decoder.next()).toMatchObject({ t: "object" })
  expect(decoder.next()).toBe("more") // a number may go on in the next piece
  decoder.push('{"ID" x')
  expect(decoder.next()).toMatchObject({ t: "number", raw: "12" })
  expect(errorOf(() => decoder.next())).toBe("invalid character 'x' after object key")
  const cut = new StreamingBodyDecoder()
  cut.push('{"ID":')
  expect(cut.next()).toBe("more")
  cut.end()
  expect(errorOf(() => cut.next())).toBe("unexpected EOF")
})
