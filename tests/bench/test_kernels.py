"""The kernel timing table (bench/kernels.py): every path on the same tile and field grid."""

from __future__ import annotations

from bench.kernels import kernel_times, main


def test_every_path_finds_the_same_matches_and_times_each_kernel() -> None:
    rows = kernel_times(side=128, repeat=1)
    paths = [row[0] for row in rows]
    assert paths[:2] == ["numpy", "torch-cpu"]
    assert len({row[3] for row in rows}) == 1 and rows[0][3] > 0  # the same matches
    assert all(ms > 0 for row in rows for ms in (row[1], row[2], row[4]))


def test_the_table_has_a_row_per_path(capsys) -> None:
    main(["--side", "96", "--repeat", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert "dense ms" in lines[1]
    assert [line.split()[0] for line in lines[2:]][:2] == ["numpy", "torch-cpu"]
