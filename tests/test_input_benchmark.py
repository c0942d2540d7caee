"""python -m zoo benchmark-input in its smallest form: both pipelines and the
reference run on generated photos and on a folder, and the table holds
every row (issue 27; the speeds themselves are in docs/performance.md)."""


import numpy as np
import tensorflow as tf

from ir2net_tf.catalog import cli, input_benchmark


def test_generated_photos_are_jpegs_of_the_promised_sizes():
    images = input_benchmark.photos(4)
    shapes = [tf.image.extract_jpeg_shape(i).numpy() for i in images]
    assert all(256 <= h <= 500 and 256 <= w <= 500 and c == 3 for h, w, c in shapes)
    assert 15_000 < np.mean([len(i) for i in images]) < 120_000


def test_smallest_run_prints_every_row(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, contents in enumerate(input_benchmark.photos(8, seed=1)):
        (folder / f"{i}.jpg").write_bytes(contents)
    code = cli.main(["benchmark-input", "--folder", str(folder), "--images", "8", "--batch", "2", "--rounds", "1",
                     "--threads", "1", "--size", "32"])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| 1 |")]
    assert [r[1].strip() for r in rows] == ["train, ours", "train, reference", "evaluation, ours",
                                            "evaluation, reference"]
    assert all(float(r[2].split()[0]) > 0 for r in rows) and float(rows[0][3].split()[0]) > 0


def test_too_few_images_is_one_line(tmp_path, capsys):
    assert cli.main(["benchmark-input", "--folder", str(tmp_path), "--rounds", "1"]) == 2
    assert "holds no .jpg" in capsys.readouterr().err
