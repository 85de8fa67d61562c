"""A TLS-terminating TCP proxy for tests: `python tls_proxy.py CERT KEY UPSTREAM_PORT`.

It listens on a free port of 127.0.0.1, prints that port on stdout, and relays every TLS
connection, decrypted, to 127.0.0.1:UPSTREAM_PORT, as a load balancer in front of a WebSocket
server does. tests/load.rs puts it in front of `wsctl dev` to try `wsctl load` over wss://.
"""
import socket
import ssl
import sys
import threading

cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1024)
print(server.getsockname()[1], flush=True)


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def handle(client):
    try:
        tls = ctx.wrap_socket(client, server_side=True)
    except (OSError, ssl.SSLError):
        client.close()
        return
    up = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
    pipe(up, tls)


while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
