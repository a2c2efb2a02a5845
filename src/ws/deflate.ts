// PROVISIONAL, so that the tree runs (no deflate is ever negotiated): the deflate helper replaces this whole file.
export interface DeflateOptions { serverNoContextTakeover?: boolean; clientNoContextTakeover?: boolean; serverMaxWindowBits?: number; thresholdBytes?: number }
export interface DeflateParams { serverNoContextTakeover: boolean; clientNoContextTakeover: boolean; serverMaxWindowBits: number; clientMaxWindowBits: number; thresholdBytes: number }
export function negotiateDeflate(_header: string | null, _options: DeflateOptions): { response: string; params: DeflateParams } | null { return null; }
export class MessageInflater { constructor(_p: DeflateParams) {} inflate(d: Uint8Array, _m: number): Uint8Array { return d; } close(): void {} }
export class MessageDeflater { constructor(_p: DeflateParams) {} deflate(d: Uint8Array): Uint8Array { return d; } close(): void {} }
