"""The progress reader's pure part: the new lines of a timestamped log chunk, and where to read on from."""

from __future__ import annotations

from kubetune.kube.progress import format_log_time, log_time, new_lines

CHUNK = ("2026-01-01T00:00:05.100000000Z kubetune: epoch=1 acc=0.1\n"
         "2026-01-01T00:00:05.2Z kubetune: epoch=2 acc=0.2\n"
         "2026-01-01T00:00:06.000000001Z kubetune: epoch=3 acc=0.3\n"
         "2026-01-01T00:00:06.5Z half a li")


def test_only_complete_lines_after_the_cursor_are_taken() -> None:
    lines, cursor = new_lines(CHUNK, "2026-01-01T00:00:05.100000000Z", full=False)
    assert lines == ["kubetune: epoch=2 acc=0.2", "kubetune: epoch=3 acc=0.3"]  # not the partial last line
    assert cursor == "2026-01-01T00:00:06.000000001Z"
    again, same = new_lines(CHUNK, cursor, full=False)  # the cursor's second comes back: nothing is read twice
    assert again == [] and same == cursor


def test_timestamps_compare_to_the_nanosecond_whatever_their_digits() -> None:
    assert log_time("2026-01-01T00:00:05.2Z") == log_time("2026-01-01T00:00:05.200000000Z")
    assert log_time("2026-01-01T00:00:05.100000001Z") > log_time("2026-01-01T00:00:05.1Z")  # type: ignore[operator]
    assert log_time("not a time") is None
    moment = log_time("2026-01-01T00:00:05.000000042Z")
    assert moment is not None and format_log_time(moment) == "2026-01-01T00:00:05.000000042Z"


def test_a_full_chunk_with_nothing_new_moves_the_cursor_to_the_next_second() -> None:
    stuck = "2026-01-01T00:00:05.1Z x\n" * 3
    lines, cursor = new_lines(stuck, "2026-01-01T00:00:05.9Z", full=True)
    assert lines == [] and cursor == "2026-01-01T00:00:06.000000000Z"
    assert new_lines(stuck, "2026-01-01T00:00:05.9Z", full=False) == ([], "2026-01-01T00:00:05.9Z")
