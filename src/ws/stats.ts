// A server's WebSocket counters, kept in its engine's counters (src/counters.ts: shared memory in a cluster).
import type { EngineStats } from "../http/engine-stats.ts";

export class WsStats {
  constructor(private readonly engine: EngineStats) {}
  get messagesIn(): number { return this.engine.wsMessagesIn; }
  set messagesIn(v: number) { this.engine.wsMessagesIn = v; }
  get messagesOut(): number { return this.engine.wsMessagesOut; }
  set messagesOut(v: number) { this.engine.wsMessagesOut = v; }
  get bytesIn(): number { return this.engine.wsBytesIn; }
  set bytesIn(v: number) { this.engine.wsBytesIn = v; }
  get bytesOut(): number { return this.engine.wsBytesOut; }
  set bytesOut(v: number) { this.engine.wsBytesOut = v; }
  get dropped(): number { return this.engine.wsDropped; }
  set dropped(v: number) { this.engine.wsDropped = v; }
  /** Frames that broke the protocol count with the HTTP engine's protocol errors. */
  get protocolErrors(): number { return this.engine.protocolErrors; }
  set protocolErrors(v: number) { this.engine.protocolErrors = v; }
  get handlerErrors(): number { return this.engine.handlerErrors; }
  set handlerErrors(v: number) { this.engine.handlerErrors = v; }
  get timeouts(): number { return this.engine.timeouts; }
  set timeouts(v: number) { this.engine.timeouts = v; }

  opened(): void {
    this.engine.wsOpened++;
  }

  /** A connection ended with `code` (1006: without a close frame). */
  countClose(code: number): void {
    const engine = this.engine;
    engine.wsClosed++;
    if (code === 1000 || code === 1001) engine.wsClosesNormal++;
    else if (code === 1006) engine.wsClosesAbnormal++;
    else if (code === 1002 || code === 1003 || code === 1007 || code === 1008 || code === 1009 || code === 1011) engine.wsClosesError++;
    else engine.wsClosesOther++;
  }
}
