// The HTTP engine's counters by name, over a Float64Array in the counters' layout (src/counters.ts).
import { COUNTER_NAMES, type CounterName, F, SLOT_FIELDS } from "../counters.ts";

/** The engine's counters, stored in a Float64Array: a private one, or a worker's slot in the
 * cluster's shared memory (src/cluster/shared-stats.ts), so the primary reads them live. */
export class EngineStats {
  constructor(readonly fields: Float64Array = new Float64Array(SLOT_FIELDS)) {}
  get accepted(): number { return this.fields[F.accepted]; }
  set accepted(v: number) { this.fields[F.accepted] = v; }
  get active(): number { return this.fields[F.active]; }
  set active(v: number) { this.fields[F.active] = v; }
  get requests(): number { return this.fields[F.requests]; }
  set requests(v: number) { this.fields[F.requests] = v; }
  get bytesIn(): number { return this.fields[F.bytesIn]; }
  set bytesIn(v: number) { this.fields[F.bytesIn] = v; }
  get bytesOut(): number { return this.fields[F.bytesOut]; }
  set bytesOut(v: number) { this.fields[F.bytesOut] = v; }
  /** Handler throws/rejections and invalid handler results (answered 500). */
  get handlerErrors(): number { return this.fields[F.handlerErrors]; }
  set handlerErrors(v: number) { this.fields[F.handlerErrors] = v; }
  /** Malformed requests and limit violations (answered 4xx and closed). */
  get protocolErrors(): number { return this.fields[F.protocolErrors]; }
  set protocolErrors(v: number) { this.fields[F.protocolErrors] = v; }
  /** Connections refused for maxConnections, shutdown or fd exhaustion. */
  get rejectedConnections(): number { return this.fields[F.rejectedConnections]; }
  set rejectedConnections(v: number) { this.fields[F.rejectedConnections] = v; }
  get acceptErrors(): number { return this.fields[F.acceptErrors]; }
  set acceptErrors(v: number) { this.fields[F.acceptErrors] = v; }
  get readErrors(): number { return this.fields[F.readErrors]; }
  set readErrors(v: number) { this.fields[F.readErrors] = v; }
  get writeErrors(): number { return this.fields[F.writeErrors]; }
  set writeErrors(v: number) { this.fields[F.writeErrors] = v; }
  get timeouts(): number { return this.fields[F.timeouts]; }
  set timeouts(v: number) { this.fields[F.timeouts] = v; }
  get bytesDiscarded(): number { return this.fields[F.bytesDiscarded]; }
  set bytesDiscarded(v: number) { this.fields[F.bytesDiscarded] = v; }
  get sendTimeouts(): number { return this.fields[F.sendTimeouts]; }
  set sendTimeouts(v: number) { this.fields[F.sendTimeouts] = v; }
  get bodyTimeouts(): number { return this.fields[F.bodyTimeouts]; }
  set bodyTimeouts(v: number) { this.fields[F.bodyTimeouts] = v; }
  get outputPauses(): number { return this.fields[F.outputPauses]; }
  set outputPauses(v: number) { this.fields[F.outputPauses] = v; }

  // WebSocket connections (src/ws/), counted by the engine whose connections they were.
  get wsOpened(): number { return this.fields[F.wsOpened]; }
  set wsOpened(v: number) { this.fields[F.wsOpened] = v; }
  get wsClosed(): number { return this.fields[F.wsClosed]; }
  set wsClosed(v: number) { this.fields[F.wsClosed] = v; }
  get wsMessagesIn(): number { return this.fields[F.wsMessagesIn]; }
  set wsMessagesIn(v: number) { this.fields[F.wsMessagesIn] = v; }
  get wsMessagesOut(): number { return this.fields[F.wsMessagesOut]; }
  set wsMessagesOut(v: number) { this.fields[F.wsMessagesOut] = v; }
  get wsBytesIn(): number { return this.fields[F.wsBytesIn]; }
  set wsBytesIn(v: number) { this.fields[F.wsBytesIn] = v; }
  get wsBytesOut(): number { return this.fields[F.wsBytesOut]; }
  set wsBytesOut(v: number) { this.fields[F.wsBytesOut] = v; }
  get wsDropped(): number { return this.fields[F.wsDropped]; }
  set wsDropped(v: number) { this.fields[F.wsDropped] = v; }
  get wsClosesNormal(): number { return this.fields[F.wsClosesNormal]; }
  set wsClosesNormal(v: number) { this.fields[F.wsClosesNormal] = v; }
  get wsClosesError(): number { return this.fields[F.wsClosesError]; }
  set wsClosesError(v: number) { this.fields[F.wsClosesError] = v; }
  get wsClosesAbnormal(): number { return this.fields[F.wsClosesAbnormal]; }
  set wsClosesAbnormal(v: number) { this.fields[F.wsClosesAbnormal] = v; }
  get wsClosesOther(): number { return this.fields[F.wsClosesOther]; }
  set wsClosesOther(v: number) { this.fields[F.wsClosesOther] = v; }

  snapshot(): Record<"active" | CounterName, number> {
    const out = { active: this.active } as Record<"active" | CounterName, number>;
    for (const name of COUNTER_NAMES) out[name] = this.fields[F[name]];
    return out;
  }
}
