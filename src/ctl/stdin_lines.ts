// Standard input one line at a time, as it arrives: `watch -i` and `txn -i`
// act on each line while a person is still typing the next one, the way
// etcdctl's bufio.Reader.ReadString('\n') does (reading all input first would
// show nothing until EOF).

export class StdinLines {
  private buffered = ""
  private ended = false
  private readonly decoder = new TextDecoder()
  private readonly chunks: AsyncIterator<Uint8Array | string>

  constructor(source: AsyncIterable<Uint8Array | string>) {
    this.chunks = source[Symbol.asyncIterator]()
  }

  /**
   * The next complete line without its "\n", or undefined at EOF. A last line
   * without a newline counts as EOF, as ReadString reports it (with io.EOF).
   */
  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.buffered.indexOf("\n")
      if (nl >= 0) {
        const line = this.buffered.slice(0, nl)
        this.buffered = this.buffered.slice(nl + 1)
        return line
      }
      if (this.ended) return undefined
      const chunk = await this.chunks.next()
      if (chunk.done === true) {
        this.ended = true
        this.buffered += this.decoder.decode()
      } else {
        this.buffered += typeof chunk.value === "string" ? chunk.value : this.decoder.decode(chunk.value, { stream: true })
      }
    }
  }
}
