/**
 * The `data` of each server-sent event in a byte stream, as soon as the event is complete (its blank line read):
 * several `data:` lines of one event are joined with newlines, comments (`:`) and other fields are skipped, CRLF and
 * CR line ends are accepted, and characters split across chunks are decoded whole. An event left unterminated at the
 * end of the stream still counts.
 */
export async function* sseData(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  let data: string[] = [];
  const lines = function* (text: string, final: boolean): Generator<string> {
    pending += text;
    let start = 0;
    for (let i = 0; i < pending.length; i++) {
      const c = pending[i];
      if (c !== "\n" && c !== "\r") continue;
      if (c === "\r" && i + 1 === pending.length && !final) break; // a CR whose LF may come next
      yield pending.slice(start, i);
      if (c === "\r" && pending[i + 1] === "\n") i++;
      start = i + 1;
    }
    pending = pending.slice(start);
    if (final && pending !== "") {
      yield pending;
      pending = "";
    }
  };
  const take = (line: string): string | undefined => {
    if (line === "") {
      const event = data.length > 0 ? data.join("\n") : undefined;
      data = [];
      return event;
    }
    if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    return undefined;
  };
  for await (const chunk of chunks) {
    for (const line of lines(decoder.decode(chunk, { stream: true }), false)) {
      const event = take(line);
      if (event !== undefined) yield event;
    }
  }
  for (const line of [...lines(decoder.decode(), true), ""]) {
    const event = take(line);
    if (event !== undefined) yield event;
  }
}
