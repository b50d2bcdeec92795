/**
 * Every diagnostics channel poplar publishes on, named in one place (node:diagnostics_channel).
 * The session, listener and delivery code publish facts; metrics.ts (and anyone embedding poplar)
 * subscribe. Publishing costs nothing when nobody listens.
 */
import diagnostics_channel from 'node:diagnostics_channel';

export interface SessionOpenEvent {
  readonly ip: string;
  readonly tls: boolean;
}
export interface SessionCloseEvent {
  readonly reason: string;
  readonly bytesOut: number;
  readonly retr: number;
  readonly dele: number;
}
export interface CommandEvent {
  readonly command: string;
  readonly ok: boolean;
  readonly seconds: number;
}
export interface LoginEvent {
  readonly result: 'success' | 'failure';
  readonly mechanism: string;
}
export interface DeliveryEvent {
  readonly result: 'delivered' | 'rejected' | 'failed';
  readonly bytes: number;
  readonly seconds: number;
}
/** Why a delivery was refused (the closed set of the metric's `reason` label; src/delivery/refusals.ts). */
export const DELIVERY_REFUSAL_REASONS = ['unknown_user', 'over_quota', 'too_big', 'temp_failure'] as const;
export const DELIVERY_PROTOCOLS = ['lmtp', 'deliver'] as const;
/** A delivery refused for one recipient; `count` > 1 for tallies read from files. */
export interface DeliveryRefusedEvent {
  readonly protocol: (typeof DELIVERY_PROTOCOLS)[number];
  readonly reason: (typeof DELIVERY_REFUSAL_REASONS)[number];
  readonly count: number;
}
export interface RefusedEvent {
  readonly reason: string;
}
export interface ErrorEvent {
  readonly kind: string;
}

const ch = <T>(name: string) => diagnostics_channel.channel(name) as diagnostics_channel.Channel & { publish(m: T): void };

export const channels = {
  sessionOpen: ch<SessionOpenEvent>('poplar:session:open'),
  sessionClose: ch<SessionCloseEvent>('poplar:session:close'),
  command: ch<CommandEvent>('poplar:command'),
  login: ch<LoginEvent>('poplar:login'),
  delivery: ch<DeliveryEvent>('poplar:delivery'),
  deliveryRefused: ch<DeliveryRefusedEvent>('poplar:delivery:refused'),
  refused: ch<RefusedEvent>('poplar:connection:refused'),
  error: ch<ErrorEvent>('poplar:error'),
} as const;
