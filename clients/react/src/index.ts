export { useWebSocket, backoffDelay, withToken } from './useWebSocket.js';
export { StreamOrder, stampOf } from './streams.js';
export type { Stamp } from './streams.js';
export type { UseWebSocketOptions, TokenSource } from './useWebSocket.js';
export type {
  UseWebSocket,
  Handler,
  Forbidden,
  GatewayError,
  BuiltInEvents,
  BuiltInActions,
  EventData,
  ActionData,
  Untyped,
  RequestArgs,
  RequestOptions,
} from './types.js';
