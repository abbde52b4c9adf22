#!/usr/bin/env python3
"""A third-party client against `tapedeck serve`: ccxt's async websocket client for Binance
(`ccxt.pro.binance`) pointed at a served recording must see what the recording holds.

- watch_trades: every trade from the subscription to the end of the recording arrives once, in
  order, with the recorded trade id, time (ms), side, price and amount (the recording's exact
  decimal strings parsed as floats, as ccxt parses the wire strings). The subscription may land
  a few records after the clock starts; the trades before it are reported, not required, but at
  least --min-trades must arrive.
- watch_order_book: ccxt syncs its book from the served REST snapshot and the diff stream.
  Every book watch_order_book returns (nonce = the u of the last diff ccxt applied) must equal,
  level for level on both sides, the book built here from the recording: its snapshot plus its
  diffs under Binance's sync rules, up to the same u. After the last diff the book tapedeck
  itself serves on GET /api/v3/depth (fetched through ccxt's fetch_order_book) must equal it too.

The book is watched with limit 5000 (Binance's snapshot maximum): ccxt trims its book to the
limit every time it returns it, and with a smaller limit the deep levels it dropped would make
an exact comparison impossible. The sample's book never holds more than 2412 levels a side.

Nothing may leave the machine: every URL ccxt knows is rewritten to the local server, markets
come from the served exchangeInfo only (spot, no currencies, no margin), and every REST and
WebSocket URL ccxt opens is checked before it is opened.

Usage: ccxt_check.py --url http://127.0.0.1:PORT --trades TRADES.ndjson --book BOOK.ndjson
  (TRADES: `tapedeck export REC --kind trade`; BOOK: `tapedeck export REC --kind
  book_snapshot,book_delta`). Exit 0 when everything matches, 1 on a mismatch (with a message
  saying what differs), 2 on an error (bad input, timeout, ccxt failure).
"""

import argparse
import asyncio
import json
import sys
from decimal import Decimal
from urllib.parse import urlsplit

import ccxt
import ccxt.pro


class Mismatch(Exception):
    """What ccxt saw differs from the recording."""


def fail(msg, code=2):
    print(f"ccxt_check: {msg}", file=sys.stderr)
    sys.exit(code)


def read_ndjson(path, venue_symbol):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r.get("venue_symbol") == venue_symbol]


def localize(tree, rest, ws):
    """Every http(s)/ws(s) URL in ccxt's url tree, moved to the local server (path kept)."""
    if isinstance(tree, dict):
        return {k: localize(v, rest, ws) for k, v in tree.items()}
    if isinstance(tree, str) and "://" in tree:
        parts = urlsplit(tree)
        base = ws if parts.scheme in ("ws", "wss") else rest
        return base + parts.path
    return tree


def make_exchange(rest, ws):
    """ccxt.pro.binance that can only reach `rest` and `ws` (scheme://host:port)."""
    opened = []

    class LocalBinance(ccxt.pro.binance):
        async def fetch(self, url, method="GET", headers=None, body=None):
            if not url.startswith(rest + "/"):
                raise RuntimeError(f"refusing a non-local REST URL: {url}")
            opened.append("GET " + urlsplit(url).path)
            return await super().fetch(url, method, headers, body)

        def client(self, url):
            if not url.startswith(ws + "/"):
                raise RuntimeError(f"refusing a non-local WebSocket URL: {url}")
            opened.append("ws " + url[len(ws):])
            return super().client(url)

    exchange = LocalBinance(
        {
            # Binance's request weights mean nothing to a local server; ccxt would otherwise
            # wait seconds before the 5000-level depth requests.
            "enableRateLimit": False,
            "options": {
                "defaultType": "spot",
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
                # Keep every trade: watch_trades returns the new ones since the last call, out
                # of a cache that must not overflow between two calls at --speed max.
                "tradesLimit": 100_000,
                "watchOrderBookLimit": 5000,
            },
        }
    )
    exchange.urls["api"] = localize(exchange.urls["api"], rest, ws)
    for key in ("test", "demo"):
        exchange.urls.pop(key, None)
    return exchange, opened


def expected_trades(rows):
    """(id, timestamp ms, side, price, amount) per recorded trade, in recording order."""
    out = []
    for r in rows:
        if r["kind"] != "trade":
            continue
        out.append((str(r["trade_id"]), r["ts_exchange"] // 1_000_000, r["side"], r["price"], r["qty"]))
    return out


class ExpectedBook:
    """The recording's book: its snapshot, then diffs under Binance's spot sync rules, applied
    up to a given u (forward only)."""

    def __init__(self, rows):
        snaps = [r for r in rows if r["kind"] == "book_snapshot"]
        if len(snaps) != 1:
            fail(f"expected one book snapshot in the book file, found {len(snaps)}")
        snap = snaps[0]
        self.snapshot_u = snap["last_update_id"]
        self.book = {side: {Decimal(lv["price"]): lv for lv in snap[side]} for side in ("bids", "asks")}
        self.deltas = []
        prev = None
        for r in rows:
            if r["kind"] != "book_delta" or r["last_update_id"] <= self.snapshot_u:
                continue
            if prev is None and not (r["first_update_id"] <= self.snapshot_u + 1 <= r["last_update_id"]):
                fail(f"seq {r['seq']}: the first diff after the snapshot does not straddle it")
            if prev is not None and r["first_update_id"] != prev + 1:
                fail(f"seq {r['seq']}: gap in the recorded diffs (U {r['first_update_id']} after u {prev})")
            prev = r["last_update_id"]
            self.deltas.append(r)
        if not self.deltas:
            fail("no diffs after the snapshot")
        self.final_u = prev
        self.u = self.snapshot_u
        self.ts = None  # E (ms) of the last diff applied
        self.next = 0

    def advance(self, u, where):
        """Applies the diffs up to the one ending at u."""
        if u < self.u:
            raise Mismatch(f"{where}: ccxt's book went back from u={self.u} to u={u}")
        while self.u < u and self.next < len(self.deltas):
            d = self.deltas[self.next]
            self.next += 1
            for side in ("bids", "asks"):
                for lv in d[side]:
                    price = Decimal(lv["price"])
                    if Decimal(lv["qty"]) == 0:
                        self.book[side].pop(price, None)
                    else:
                        self.book[side][price] = lv
            self.u, self.ts = d["last_update_id"], d["ts_exchange"] // 1_000_000
        if self.u != u:
            raise Mismatch(f"{where}: ccxt's book nonce {u} is not the u of any recorded diff")

    def levels(self):
        """(bids best first, asks best first), each level with the recording's exact strings."""
        bids = [self.book["bids"][p] for p in sorted(self.book["bids"], reverse=True)]
        asks = [self.book["asks"][p] for p in sorted(self.book["asks"])]
        return bids, asks


def compare_side(name, where, got, want):
    """ccxt's [price, amount] floats against the recording's exact strings."""
    for i, (g, w) in enumerate(zip(got, want)):
        if g[0] != float(w["price"]) or g[1] != float(w["qty"]):
            raise Mismatch(
                f"{where}: {name} level {i} differs: ccxt {g[0]!r} x {g[1]!r}, "
                f"expected {w['price']} x {w['qty']}"
            )
    if len(got) != len(want):
        raise Mismatch(f"{where}: ccxt has {len(got)} {name} levels, expected {len(want)}")


def compare_book(ob, expected):
    """ccxt's book against the recording's at ccxt's nonce. Called without yielding to the
    event loop between reading the book and comparing it, so nothing moves under it."""
    u = ob["nonce"]
    where = f"watch_order_book at u={u}"
    expected.advance(u, where)
    bids, asks = expected.levels()
    compare_side("bid", where, ob["bids"], bids)
    compare_side("ask", where, ob["asks"], asks)
    # A book straight from the REST snapshot has no time (Binance's depth has none).
    if ob["timestamp"] is not None and ob["timestamp"] != expected.ts:
        raise Mismatch(f"{where}: ccxt's book time {ob['timestamp']} differs from the diff's E {expected.ts}")
    return len(bids), len(asks)


async def watch_trades(exchange, symbol, last_id):
    got = []
    while not got or got[-1]["id"] != last_id:
        got.extend(await exchange.watch_trades(symbol))
    return got


async def watch_book(exchange, symbol, expected):
    """Compares every book ccxt returns until it holds the last recorded diff; returns the
    nonces compared and the final level counts."""
    nonces = []
    while True:
        ob = await exchange.watch_order_book(symbol, 5000)
        sizes = compare_book(ob, expected)
        nonces.append(ob["nonce"])
        if ob["nonce"] >= expected.final_u:
            return nonces, sizes


def check_trades(got, want, min_trades):
    ids = [t[0] for t in want]
    first = got[0]["id"]
    if first not in ids:
        raise Mismatch(f"watch_trades: the first trade ccxt got (id {first}) is not in the recording")
    skipped = ids.index(first)
    run = want[skipped:]
    if len(got) != len(run):
        raise Mismatch(
            f"watch_trades: {len(got)} trades from id {first} to the end, the recording has {len(run)}"
        )
    for i, (g, (tid, ts, side, price, qty)) in enumerate(zip(got, run)):
        seen = (g["id"], g["timestamp"], g["side"], g["price"], g["amount"])
        if seen != (tid, ts, side, float(price), float(qty)):
            raise Mismatch(
                f"watch_trades: trade {skipped + i} differs: ccxt (id, ms, side, price, amount) {seen}, "
                f"recorded {(tid, ts, side, price, qty)}"
            )
    if len(got) < min(min_trades, len(want)):
        raise Mismatch(f"watch_trades: only {len(got)} trades received (the subscription came {skipped} trades late)")
    return skipped


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="served base URL, http://HOST:PORT (WebSocket on the same port)")
    ap.add_argument("--ws-url", help="WebSocket base if not the same port (ws://HOST:PORT)")
    ap.add_argument("--trades", required=True, help="NDJSON of `tapedeck export REC --kind trade`")
    ap.add_argument("--book", required=True, help="NDJSON of `tapedeck export REC --kind book_snapshot,book_delta`")
    ap.add_argument("--symbol", default="BTC/USDT")
    ap.add_argument("--min-trades", type=int, default=500, help="fewer trades received than this is a failure")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole watch")
    args = ap.parse_args()
    rest = args.url.rstrip("/")
    ws = (args.ws_url or "ws" + rest[len("http"):]).rstrip("/")
    if not rest.startswith("http://") or not ws.startswith("ws://"):
        fail(f"expected http:// and ws:// URLs, got {rest} and {ws}")
    venue_symbol = args.symbol.replace("/", "")

    want_trades = expected_trades(read_ndjson(args.trades, venue_symbol))
    if not want_trades:
        fail(f"no {venue_symbol} trades in {args.trades}")
    book = ExpectedBook(read_ndjson(args.book, venue_symbol))

    exchange, opened = make_exchange(rest, ws)
    try:
        markets = await exchange.load_markets()
        if list(markets) != [args.symbol]:
            raise Mismatch(f"load_markets: expected only {args.symbol} from the served exchangeInfo, got {list(markets)}")
        market = markets[args.symbol]
        trades_task = watch_trades(exchange, args.symbol, want_trades[-1][0])
        book_task = watch_book(exchange, args.symbol, book)
        try:
            got_trades, (nonces, final_levels) = await asyncio.wait_for(
                asyncio.gather(trades_task, book_task), args.timeout
            )
        except asyncio.TimeoutError:
            fail(f"timed out after {args.timeout} s waiting for the last trade and diff")
        rest_book = await exchange.fetch_order_book(args.symbol, 5000)

        skipped = check_trades(got_trades, want_trades, args.min_trades)
        # tapedeck's own book once the replay is past the last diff, as served over REST.
        where = "GET /api/v3/depth after the last diff"
        if rest_book["nonce"] != book.final_u:
            raise Mismatch(f"{where}: lastUpdateId {rest_book['nonce']}, the last recorded diff ends at {book.final_u}")
        bids, asks = book.levels()
        compare_side("bid", where, rest_book["bids"], bids)
        compare_side("ask", where, rest_book["asks"], asks)
    except Mismatch as e:
        fail(str(e), code=1)
    except ccxt.ChecksumError as e:
        fail(f"ccxt's order book lost sync with the served diffs: {e}", code=1)
    except ccxt.BaseError as e:
        fail(f"ccxt failed: {type(e).__name__}: {e}")
    except RuntimeError as e:  # the local-only guard in make_exchange
        fail(str(e))
    finally:
        await exchange.close()

    print(f"ccxt {ccxt.__version__}: markets from exchangeInfo: {args.symbol} (id {market['id']}, "
          f"tick {market['precision']['price']}, step {market['precision']['amount']})")
    print(f"ccxt opened: {', '.join(dict.fromkeys(opened))}")
    print(f"watch_trades: {len(got_trades)} trades match (ids {got_trades[0]['id']}..{got_trades[-1]['id']}, "
          f"id, ms, side, price, amount); {skipped} earlier recorded trades were sent before the subscription")
    print(f"watch_order_book: {len(nonces)} books compared (u={nonces[0]}..{nonces[-1]}), all equal to the "
          f"recording's; at the last diff {final_levels[0]}x{final_levels[1]} levels, equal to tapedeck's "
          f"GET /api/v3/depth too")


if __name__ == "__main__":
    asyncio.run(main())
