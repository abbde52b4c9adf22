#!/usr/bin/env python3
"""TCP proxy for the soak test: forwards LISTEN_PORT to UPSTREAM and, every PERIOD seconds,
closes every open WebSocket connection (forced disconnects). Prints one line per kill round
and, on SIGTERM, the total number of WebSocket connections it killed."""
import asyncio, signal, sys

listen_port, upstream, period = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
up_host, up_port = upstream.rsplit(":", 1)
live = set()  # writers of WebSocket client connections
killed = 0


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_r, client_w):
    up_r, up_w = await asyncio.open_connection(up_host, int(up_port))
    first = await client_r.read(65536)
    is_ws = b"upgrade: websocket" in first.lower()
    up_w.write(first)
    if is_ws:
        live.add(client_w)
    try:
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
    finally:
        live.discard(client_w)


async def killer():
    global killed
    while True:
        await asyncio.sleep(period)
        victims = list(live)
        for w in victims:
            w.transport.abort()  # a hard close, as a network failure would be
        killed += len(victims)
        print(f"killed {len(victims)} websocket connection(s), {killed} in all", flush=True)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, done.set_result, None)
    task = asyncio.create_task(killer())
    await done
    task.cancel()
    server.close()
    print(f"total killed: {killed}", flush=True)


asyncio.run(main())
