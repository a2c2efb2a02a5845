// The complete bytes (head with Date, then body) of the last `new Response(text)` answer to a
// keep-alive HTTP/1.1 request. A handler that answers the same short text every time then costs one
// copy per response instead of a head write; the entry expires with the Date second it carries.
// Only strings are kept: they are immutable, where a byte body could change between responses.

const EMPTY = new Uint8Array(0);

export class BareTextCache {
  private text: string | null = null;
  private second = -1;
  private bytes: Uint8Array = EMPTY;

  /** The cached bytes for `text` in this Unix second, or null. */
  get(text: string, second: number): Uint8Array | null {
    return second === this.second && text === this.text ? this.bytes : null;
  }

  set(text: string, second: number, bytes: Uint8Array): void {
    this.text = text;
    this.second = second;
    this.bytes = bytes;
  }
}
