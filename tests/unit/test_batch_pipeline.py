"""The batch engine's chunk pipeline: order, bounded read-ahead, and the tail cut into pieces."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pyarrow as pa

from modelport.batch.pipeline import ordered_map, slice_rows, split_tail


def test_ordered_map_keeps_input_order_whatever_finishes_first() -> None:
    def slow_evens(i: int) -> int:
        time.sleep(0.01 if i % 2 == 0 else 0.0)
        return i * 10

    assert list(ordered_map(slow_evens, range(20), workers=3)) == [i * 10 for i in range(20)]


def test_ordered_map_reads_a_bounded_number_of_items_ahead() -> None:
    read = 0
    lock = threading.Lock()
    release = threading.Event()

    def items() -> object:
        nonlocal read
        for i in range(100):
            with lock:
                read += 1
            yield i

    def work(i: int) -> int:
        release.wait(5)
        return i

    results = ordered_map(work, items(), workers=2, ahead=4)
    first = threading.Thread(target=lambda: next(results))
    first.start()
    time.sleep(0.2)  # the consumer waits for the first result; the reader must stop reading ahead
    assert read <= 5
    release.set()
    first.join()
    assert list(results) == list(range(1, 100))


def test_ordered_map_stops_its_workers_when_the_consumer_stops() -> None:
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        time.sleep(0.01)
        return i

    results = ordered_map(work, range(1000), workers=2)
    assert next(results) == 0
    results.close()
    assert len(started) < 10


def test_split_tail_cuts_only_the_last_rows_into_pieces() -> None:
    chunks = [list(range(i * 100, (i + 1) * 100)) for i in range(5)] + [list(range(500, 530))]
    out = list(split_tail(iter(chunks), lambda c, a, b: c[a:b], tail_rows=100, piece_rows=25))
    assert [x for c in out for x in c] == list(range(530))  # every row once, in order
    assert [len(c) for c in out] == [100] * 4 + [25] * 4 + [30]


def test_split_tail_leaves_small_chunks_whole() -> None:
    chunks = [[1] * 10, [2] * 10, [3] * 7]
    assert list(split_tail(iter(chunks), lambda c, a, b: c[a:b], tail_rows=64, piece_rows=4096)) == chunks


def test_slice_rows_cuts_arrow_batches_without_copies() -> None:
    frame = pd.DataFrame({"a": range(10), "b": list("abcdefghij")})
    chunk = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    pieces = [slice_rows(chunk, a, b) for a, b in ((0, 3), (3, 7), (7, 10))]
    assert [len(p) for p in pieces] == [3, 4, 3]
    assert pieces[1].column("a").buffers()[1].address == chunk.column("a").buffers()[1].address
    pd.testing.assert_frame_equal(pa.Table.from_batches(pieces).to_pandas(), frame)
