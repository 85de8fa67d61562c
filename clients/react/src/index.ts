export { useWebSocket, backoffDelay, withToken } from './useWebSocket.js';
export type { UseWebSocket, UseWebSocketOptions, Handler, TokenSource } from './useWebSocket.js';
