import re

from instancehmr.cli import main


def test_config_show_prints_the_paper_weights(capsys):
    assert main(["config", "show", "experiments/base.yaml"]) == 0
    out = capsys.readouterr().out
    for line in ("cont: 50.0", "center: 160.0", "joint: 50.0", "pose: 80.0", "shape: 6.0", "prior: 1.6",
                 "j3d: 200.0", "pa3d: 360.0", "j2d: 400.0"):  # fmt: skip
        assert line in out


def test_config_errors_exit_2_with_one_line(capsys):
    assert main(["config", "show", "experiments/base.yaml", "model.embeding_dim=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("instancehmr: error:") and "did you mean 'model.embedding_dim'" in err


def test_body_synth_writes_a_model_smplx_loads(tmp_path, capsys):
    import smplx

    assert main(["body", "synth", "--out", str(tmp_path)]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    model = smplx.SMPL(model_path=str(tmp_path))  # unmodified smplx finds SMPL_NEUTRAL.pkl
    assert model().vertices.shape == (1, 6890, 3)


def test_bench_model_reports_against_the_backbone(capsys):
    overrides = ["model.input_size=64", "model.map_size=8"]
    assert (
        main(["bench", "model", "experiments/quickstart.yaml", *overrides, "--repeats", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "parameters" in out and "x backbone" in out


def test_bench_predict_reports_against_the_network(capsys):
    overrides = ["model.input_size=64", "model.map_size=8"]
    argv = ["bench", "predict", "quickstart", *overrides, "--images", "4", "--batch-size", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 people per image, 4 JPEG photos" in out
    assert re.search(r"ratio +\d+\.\d\d x network \(goal >= 0.8\)", out)
