"""python -m train's settings off the happy path (issue 15): what only the
combination of flags, the model or the files decide is refused before any
file is written, with a message naming the flag; the library's Run checks
the same; an unusable --teacher is named. (Each flag's own range:
tests/test_flag_domains.py.)"""


import pytest
import tensorflow as tf

from ir2net_tf.runs import run

from tests_support import SMALL_ONE_EPOCH as SMALL, digits_settings, train_cli


# Each flag's own range (--epochs=0, --momentum=1.5, NaN, ...): exit 2 while
# parsing, tests/test_flag_domains.py (generated from the definitions). Here:
# what only the combination of flags, the model or the files decide.
@pytest.mark.parametrize("args, flag", [
    (["--epochs=0"], "--epochs"),
    (["--image_size=10"], "multiples of 4"),
    (["--model=IR2ResNet18"], "multiples of 32"),
    (["--init_weights=/no/such.weights.h5"], "--init_weights"),
    (["--teacher=/no/such/teacher.keras"], "--teacher '/no/such/teacher.keras' does not exist"),
    (["--teacher=ResNet"], "Unknown teacher 'ResNet'"),
    (["--stage=1", "--init_weights=x.weights.h5"], "--init_weights"),
    (["--weights=x.weights.h5"], "--weights"),
    (["--mode=evaluate", "--epochs=3"], "--epochs"),
    (["--dataset=./no_such_folder/"], "--dataset"),
    (["--dataset=cifar10", "--data_dir=/no/such/tfds"], "--data_dir"),
])
def test_bad_flags_are_refused_before_any_file(tmp_path, capsys, args, flag):
    folder = tmp_path / "run"
    code, _, err = train_cli(capsys, *SMALL, *args, f"--model_dir={folder}")
    # A flag's own domain or path rule (flag_domains, path_args): exit 2 while parsing.
    parsing = args == ["--epochs=0"] or args[-1].split("=")[0] in ("--init_weights", "--weights", "--data_dir")
    assert code == (2 if parsing else 1) and flag in err, err
    assert "Unknown variant None" not in err
    assert not folder.exists()


def test_run_refuses_bad_settings_before_touching_the_directory(tmp_path):
    """The library's Run checks the same ranges as the command line."""
    with pytest.raises(ValueError, match="--epochs must be an integer ≥ 1"):
        run.Run(digits_settings(epochs=0), model_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def _saved(path, shape=(8, 8, 3), outputs=10, rank=2):
    inputs = tf.keras.Input(shape)
    x = tf.keras.layers.GlobalAveragePooling2D()(inputs) if rank == 2 else inputs
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(outputs)(x))
    model.save(path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("size", "takes inputs of shape (16, 16, 3)"),
    ("channels", "takes inputs of shape (8, 8, 1)"),
    ("rank", "outputs [(None, 8, 8, 10)]"),
    ("not_a_model", "is not a saved Keras model"),
])
def test_unusable_teacher_is_named(tmp_path, kind, message):
    from ir2net_tf.runs.teacher import load_teacher

    path = str(tmp_path / "teacher.keras")
    if kind == "size":
        _saved(path, shape=(16, 16, 3))
    elif kind == "channels":
        _saved(path, shape=(8, 8, 1))
    elif kind == "rank":
        _saved(path, rank=4)
    else:
        open(path, "w").write("hello")
    with pytest.raises(ValueError) as error:
        load_teacher(path, (8, 8, 3), 10)
    assert path in str(error.value) and message in str(error.value), str(error.value)
