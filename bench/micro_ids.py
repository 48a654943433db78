"""Micro-benchmark of the id rule and of decoding one view, on the hot path of every record:
``.venv/bin/python -m bench.micro_ids``. Best of 7 runs, so a busy machine shows less."""

from __future__ import annotations

import timeit

from app.codec import decode_view, id_problem

IDS = ["prop-1234", "user-98765", "investor", "3f2b8c1e-9d4a-4f7e-8a2b-1c9d0e7f6a5b",
       "a:b/c %物件", "ÿþ-prop", "x" * 200]
VIEW = (b'{"eventId":"3f2b8c1e-9d4a-4f7e-8a2b-1c9d0e7f6a5b","eventType":"property.viewed",'
        b'"version":"1.0","timestamp":"2026-11-20T14:03:11.123Z","propertyId":"prop-1234",'
        b'"userId":"user-98765","sessionId":"s-1","source":"web","durationMs":1234}')


def ids() -> None:
    for ident in IDS:
        id_problem(ident)


def view() -> None:
    decode_view(b"prop-1234", VIEW, now_ms=2_000_000_000_000, max_bytes=1_000_000,
                future_tolerance_ms=300_000)


def main() -> None:
    n = 200_000
    best = min(timeit.repeat(ids, number=n, repeat=7))
    print(f"id_problem: {best / (n * len(IDS)) * 1e9:.1f} ns per id "
          f"(best of 7 x {n} x {len(IDS)} ids)")
    n = 50_000
    best = min(timeit.repeat(view, number=n, repeat=7))
    print(f"decode_view: {best / n * 1e9:.0f} ns per view (best of 7 x {n})")


if __name__ == "__main__":
    main()
