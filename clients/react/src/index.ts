export { useWebSocket, backoffDelay, withToken } from './useWebSocket.js';
export type { UseWebSocket, UseWebSocketOptions, Handler, TokenSource, Forbidden } from './useWebSocket.js';
