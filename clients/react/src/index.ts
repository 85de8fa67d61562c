export { useWebSocket, backoffDelay, withToken } from './useWebSocket.js';
export { StreamOrder, stampOf } from './streams.js';
export type { Stamp } from './streams.js';
export type { UseWebSocket, UseWebSocketOptions, Handler, TokenSource, Forbidden } from './useWebSocket.js';
