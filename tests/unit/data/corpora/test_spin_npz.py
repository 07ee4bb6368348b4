"""spin_npz on the real Human3.6M and MPI-INF-3DHP samples (read-only) and variants in tmp_path, and
on both corpora written here in mmpose's layouts (the shipped cards)."""

from __future__ import annotations

import collections
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from corpus_files import write_h36m, write_mpi_inf_3dhp
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import CANONICAL_INDEX, H36M
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.base import ConversionError
from instancehmr.data.corpora.spin_npz import MPI_INF_3DHP17, SpinNpzConverter
from instancehmr.data.schema import (
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    persons_from_row,
    to_table,
)

H36M_DIR = REAL / "h36m"
MPI_DIR = REAL / "mpi_inf_3dhp"
H36M_KEY = r"^(S\d+)/[^/]+\.(\d+)/"
MPI_KEY = r"^(S\d+_Seq\d+_Cam\d+|TS\d+)_\d+\.jpg$"


def make_card(tmp_path: Path, root: Path, splits: dict, **fields):
    card = {
        "name": fields.pop("name", "h36m"),
        "format": "spin_npz",
        "root": str(root),
        "splits": splits,
        "labels": ["keypoints_2d", "keypoints_3d", "intrinsics"],
        "obtain": "test fixture",
        "license": "test fixture",
        "role": "train",
        **fields,
    }
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    return load_card(path)


def h36m_card(tmp_path: Path, **options):
    splits = {
        "train": {"annotations": "test_h36m_body3d.npz", "images": ".", "cameras": "cameras.pkl"}
    }
    return make_card(
        tmp_path,
        H36M_DIR,
        splits,
        options={"joint_set": "h36m17", "camera_key": H36M_KEY, **options},
    )


def mpi_card(tmp_path: Path, **options):
    splits = {
        split: {
            "annotations": f"test_3dhp_{split}.npz",
            "images": ".",
            "cameras": f"cameras_{split}.pkl",
        }
        for split in ("train", "test")
    }
    options = {"joint_set": "mpi_inf_3dhp17", "camera_key": MPI_KEY, **options}
    return make_card(tmp_path, MPI_DIR, splits, name="mpi_inf_3dhp", options=options)


def convert_all(card, split: str):
    converter = SpinNpzConverter()
    converter.check(card, split)
    records = [converter.convert(card, split, item) for item in converter.index(card, split)]
    for record in records:
        record.check()
    assert_round_trip(records)
    return records


def assert_round_trip(records) -> None:
    rows = to_table(records).to_pylist()
    for record, row in zip(records, rows, strict=True):
        assert row["sample_id"] == record.sample_id
        for before, after in zip(record.persons, persons_from_row(row), strict=True):
            np.testing.assert_allclose(after.keypoints_2d, before.keypoints_2d, rtol=1e-6)
            np.testing.assert_array_equal(after.keypoints_2d_vis, before.keypoints_2d_vis)
            np.testing.assert_allclose(after.keypoints_3d, before.keypoints_3d, rtol=1e-6)
            np.testing.assert_array_equal(after.keypoints_3d_valid, before.keypoints_3d_valid)


@pytest.mark.real_samples
def test_h36m_part_and_s_land_on_h36m_joints_with_camera_intrinsics(tmp_path):
    card = h36m_card(tmp_path)
    records = convert_all(card, "train")
    npz = np.load(H36M_DIR / "test_h36m_body3d.npz")
    cameras = load_pickle(H36M_DIR / "cameras.pkl")
    assert [r.sample_id for r in records] == [f"h36m/train/{n}" for n in npz["imgname"]]
    h36m = H36M.canonical_indices
    for i, record in enumerate(records):
        assert len(record.persons) == 1 and record.width == 1000
        person = record.persons[0]
        pelvis = CANONICAL_INDEX["h36m_pelvis"]
        np.testing.assert_allclose(person.keypoints_2d[pelvis], npz["part"][i, 0, :2], rtol=1e-6)
        # Flag 1 means labelled and visible: every joint is kept (the release dropped them).
        assert (person.keypoints_2d_vis[h36m] == VIS_VISIBLE).all()
        assert (np.delete(person.keypoints_2d_vis, h36m) == VIS_UNLABELLED).all()
        np.testing.assert_allclose(person.keypoints_3d[h36m], npz["S"][i, :, :3], rtol=1e-6)
        assert person.keypoints_3d_valid[h36m].all() and person.keypoints_3d_valid.sum() == 17
        assert person.smpl_source == "none" and person.smpl_pose is None
        cam = cameras[re.search(H36M_KEY, str(npz["imgname"][i])).groups()]
        expected = [
            [cam["f"][0, 0], 0, cam["c"][0, 0]],
            [0, cam["f"][1, 0], cam["c"][1, 0]],
            [0, 0, 1],
        ]
        np.testing.assert_allclose(record.intrinsics, expected)
        # S projects onto part with these intrinsics up to the lens distortion (a few pixels).
        s = person.keypoints_3d[h36m]
        projected = s[:, :2] / s[:, 2:] * np.diag(record.intrinsics)[:2] + record.intrinsics[:2, 2]
        assert np.abs(projected - person.keypoints_2d[h36m]).max() < 3.0


@pytest.mark.real_samples
def test_mpi_inf_3dhp_joints_map_by_meaning_and_out_of_frame_joints_stay_labelled(tmp_path):
    card = mpi_card(tmp_path, flags="in_frame")
    test = convert_all(card, "test")
    train = convert_all(card, "train")
    assert [r.sample_id for r in train] == [
        "mpi_inf_3dhp/train/S4_Seq2_Cam0_001033.jpg",
        "mpi_inf_3dhp/train/S8_Seq1_Cam8_002165.jpg",
    ]
    npz = np.load(MPI_DIR / "test_3dhp_test.npz")
    ts2 = test[1].persons[0]
    index = MPI_INF_3DHP17.canonical_indices
    np.testing.assert_allclose(ts2.keypoints_2d[index], npz["part"][1, :, :2], rtol=1e-6)
    np.testing.assert_allclose(
        ts2.keypoints_3d[CANONICAL_INDEX["h36m_pelvis"]], npz["S"][1, 14, :3], rtol=1e-6
    )
    np.testing.assert_allclose(
        ts2.keypoints_2d[CANONICAL_INDEX["h36m_thorax"]], npz["part"][1, 1, :2], rtol=1e-6
    )
    # Joints 4 and 7 (both wrists) lie left of the image: labelled, out of frame, 3-D valid.
    out = index[[4, 7]]
    assert (ts2.keypoints_2d_vis[out] == VIS_OUT_OF_FRAME).all()
    assert ts2.keypoints_3d_valid[out].all()
    assert (np.delete(ts2.keypoints_2d_vis[index], [4, 7]) == VIS_VISIBLE).all()
    cameras = load_pickle(MPI_DIR / "cameras_test.pkl")
    np.testing.assert_allclose(test[1].intrinsics[[0, 1], [0, 1]], cameras["TS2"]["f"][:, 0])
    train_cameras = load_pickle(MPI_DIR / "cameras_train.pkl")
    np.testing.assert_allclose(train[1].intrinsics[:2, 2], train_cameras["S8_Seq1_Cam8"]["c"][:, 0])


@pytest.mark.real_samples
def test_flags_read_as_labels_drop_unflagged_joints(tmp_path):
    ts2 = convert_all(mpi_card(tmp_path), "test")[1].persons[0]
    out = MPI_INF_3DHP17.canonical_indices[[4, 7]]
    assert (ts2.keypoints_2d_vis[out] == VIS_UNLABELLED).all()
    assert not ts2.keypoints_3d_valid[out].any()
    assert (ts2.keypoints_2d[out] == 0).all() and (ts2.keypoints_3d[out] == 0).all()


def variant(tmp_path: Path, **arrays) -> Path:
    """A copy of the Human3.6M sample with arrays replaced (None removes one), images linked."""
    folder = tmp_path / "h36m"
    for source in [H36M_DIR / "cameras.pkl", *H36M_DIR.glob("S*/*/*.jpg")]:
        target = folder / source.relative_to(H36M_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)  # writable copies of the read-only samples
    with np.load(H36M_DIR / "test_h36m_body3d.npz") as npz:
        data = {k: npz[k] for k in npz.files}
    for key, value in arrays.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    np.savez(folder / "test_h36m_body3d.npz", **data)
    return folder


def variant_card(tmp_path: Path, folder: Path, **fields):
    splits = {
        split: {"annotations": "test_h36m_body3d.npz", "images": ".", "cameras": "cameras.pkl"}
        for split in ("train", "test")
    }
    options = fields.pop("options", {"joint_set": "h36m17", "camera_key": H36M_KEY})
    return make_card(tmp_path, folder, splits, options=options, **fields)


@pytest.mark.real_samples
def test_rows_of_one_image_become_its_people_and_smpl_gt_is_kept(tmp_path):
    with np.load(H36M_DIR / "test_h36m_body3d.npz") as npz:
        names = npz["imgname"].copy()
    names[1] = names[0]  # rows 0 and 1: two people in the first image
    pose = np.random.default_rng(0).normal(size=(4, 72)).astype(np.float32) * 0.1
    shape = np.arange(4 * 12, dtype=np.float32).reshape(4, 12)
    folder = variant(tmp_path, imgname=names, pose=pose, shape=shape)
    records = convert_all(variant_card(tmp_path, folder), "train")
    assert [len(r.persons) for r in records] == [2, 1, 1]
    second = records[0].persons[1]
    assert second.smpl_source == "gt"
    np.testing.assert_allclose(second.smpl_pose, pose[1])
    np.testing.assert_allclose(second.smpl_betas, shape[1, :10])


@pytest.mark.real_samples
def test_keep_every_keeps_every_nth_image_of_the_train_split_only(tmp_path):
    with np.load(H36M_DIR / "test_h36m_body3d.npz") as npz:
        rows = {k: np.concatenate([npz[k]] * 3) for k in ("center", "scale", "part", "S")}
        names = np.array([f"{n}_{i}" for i in range(3) for n in npz["imgname"]])
    folder = variant(tmp_path, imgname=names, **rows)
    card = variant_card(tmp_path, folder, keep_every=5)
    converter = SpinNpzConverter()
    kept = [item["imgname"] for item in converter.index(card, "train")]
    assert kept == [str(names[i]) for i in (0, 5, 10)]
    assert len(converter.index(card, "test")) == 12


@pytest.mark.real_samples
def test_card_pointing_at_a_missing_file_fails_before_work(tmp_path):
    card = make_card(
        tmp_path,
        H36M_DIR,
        {"train": {"annotations": "nope.npz", "images": "."}},
        options={"joint_set": "h36m17"},
    )
    with pytest.raises(CardError, match=r"splits\.train\.annotations.*nope\.npz"):
        SpinNpzConverter().check(card, "train")


@pytest.mark.real_samples
def test_npz_without_s_names_the_file_and_key(tmp_path):
    card = variant_card(tmp_path, variant(tmp_path, S=None))
    with pytest.raises(CardError, match=r"test_h36m_body3d\.npz: no array 'S'"):
        SpinNpzConverter().index(card, "train")


@pytest.mark.real_samples
@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            {"joint_set": "lsp14", "camera_key": H36M_KEY},
            r"'part' has shape \(4, 17, 3\), expected \(4, 14, 3\)",
        ),
        ({"joint_set": "nope"}, r"options\.joint_set"),
        ({"joint_set": "h36m17"}, r"options\.camera_key"),
        ({"joint_set": "h36m17", "camera_key": r"^(S\d+)/"}, r"cameras\.pkl: no camera 'S1'"),
        ({"joint_set": "h36m17", "camera_key": H36M_KEY, "flags": "maybe"}, r"options\.flags"),
    ],
)
def test_bad_layout_or_camera_options_name_the_field(tmp_path, options, match):
    card = variant_card(tmp_path, variant(tmp_path), options=options)
    with pytest.raises(CardError, match=match):
        SpinNpzConverter().index(card, "train")


@pytest.mark.real_samples
def test_millimetres_are_refused(tmp_path):
    with np.load(H36M_DIR / "test_h36m_body3d.npz") as npz:
        s = npz["S"].copy()
    s[..., :3] *= 1000
    card = variant_card(tmp_path, variant(tmp_path, S=s))
    with pytest.raises(CardError, match="millimetres"):
        SpinNpzConverter().index(card, "train")


@pytest.mark.real_samples
def test_nan_joints_fail_that_frame_only(tmp_path):
    with np.load(H36M_DIR / "test_h36m_body3d.npz") as npz:
        s = npz["S"].copy()
    s[2, 5, 0] = np.nan
    card = variant_card(tmp_path, variant(tmp_path, S=s))
    converter = SpinNpzConverter()
    items = converter.index(card, "train")
    converter.convert(card, "train", items[1])
    with pytest.raises(ConversionError, match=r"row 2 \(S7/S7_Greeting\.55011271/.*_000396\.jpg\)"):
        converter.convert(card, "train", items[2])


@pytest.mark.real_samples
def test_corrupt_jpeg_is_a_conversion_error(tmp_path):
    folder = variant(tmp_path)
    image = folder / "S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg"
    image.write_bytes(image.read_bytes()[:200])
    card = variant_card(tmp_path, folder)
    converter = SpinNpzConverter()
    with pytest.raises(ConversionError, match=r"S1_Directions_1\.54138969_000001\.jpg"):
        converter.convert(card, "train", converter.index(card, "train")[0])


@pytest.mark.real_samples
def test_camera_pickle_with_a_foreign_global_is_refused_naming_it(tmp_path):
    folder = variant(tmp_path)
    (folder / "cameras.pkl").write_bytes(pickle.dumps(collections.OrderedDict(), protocol=2))
    with pytest.raises(CardError, match=r"cameras\.pkl: cannot read.*collections\.OrderedDict"):
        SpinNpzConverter().index(variant_card(tmp_path, folder), "train")


# -- Human3.6M and MPI-INF-3DHP written here ---------------------------------------------------

DATASETS = Path(__file__).resolve().parents[4] / "datasets"


def assert_rows_as_written(records, arrays: dict, rows: list[int], layout, cameras, key) -> None:
    """Record i holds npz row rows[i]: part -> 2-D joints, S -> 3-D joints (all valid), the
    row's camera (``key(imgname)``) -> intrinsics; a joint with flag 0 (in_frame) is out of
    frame but labelled."""
    assert [r.sample_id.split("/", 2)[2] for r in records] == [
        str(arrays["imgname"][i]) for i in rows
    ]
    index = layout.canonical_indices
    for record, row in zip(records, rows, strict=True):
        (person,) = record.persons
        part, S = arrays["part"][row], arrays["S"][row]
        np.testing.assert_allclose(person.keypoints_2d[index], part[:, :2], rtol=1e-5)
        codes = np.where(part[:, 2] > 0, VIS_VISIBLE, VIS_OUT_OF_FRAME)
        np.testing.assert_array_equal(person.keypoints_2d_vis[index], codes)
        assert (np.delete(person.keypoints_2d_vis, index) == VIS_UNLABELLED).all()
        np.testing.assert_allclose(person.keypoints_3d[index], S[:, :3], rtol=1e-5)
        assert person.keypoints_3d_valid[index].all() and person.keypoints_3d_valid.sum() == 17
        cam = cameras[key(str(arrays["imgname"][row]))]
        (fx, fy), (cx, cy) = cam["f"].ravel(), cam["c"].ravel()
        np.testing.assert_allclose(record.intrinsics, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        # K projects S onto part (the writer made part that way)
        uv = S[:, :2] / S[:, 2:3] * [fx, fy] + [cx, cy]
        np.testing.assert_allclose(person.keypoints_2d[index], uv, atol=1e-3)


def h36m_key(imgname: str) -> tuple:
    return re.search(H36M_KEY, imgname).groups()


def test_written_h36m_through_the_shipped_card_keeps_one_frame_in_five(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCEHMR_DATA", str(tmp_path))
    written = write_h36m(tmp_path / "data" / "raw" / "h36m")
    card = load_card(DATASETS / "h36m.yaml")
    assert card.keep_every == 5
    records = convert_all(card, "train")
    assert_rows_as_written(records, written["npz"], [0, 5], H36M, written["cameras"], h36m_key)
    assert (
        records[0].sample_id
        == "h36m/train/S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg"
    )
    assert all(p.smpl_source == "none" for r in records for p in r.persons)


def test_written_h36m_every_row_rows_of_one_image_and_smpl_gt(tmp_path):
    root = tmp_path / "h36m"
    written = write_h36m(root)
    arrays = dict(written["npz"])
    n = len(arrays["imgname"])
    arrays["pose"] = np.random.default_rng(1).normal(size=(n, 72)) * 0.1
    arrays["shape"] = np.arange(n * 10, dtype=np.float64).reshape(n, 10)
    np.savez(root / "annotation_body3d" / "fps50" / "h36m_train.npz", **arrays)
    splits = {
        "train": {
            "annotations": "annotation_body3d/fps50/h36m_train.npz",
            "images": "images",
            "cameras": "annotation_body3d/cameras.pkl",
        }
    }
    options = {"joint_set": "h36m17", "flags": "in_frame", "camera_key": H36M_KEY}
    card = make_card(tmp_path, root, splits, options=options)
    records = convert_all(card, "train")  # keep_every 1: every row
    assert_rows_as_written(records, arrays, list(range(n)), H36M, written["cameras"], h36m_key)
    for record, pose, shape in zip(records, arrays["pose"], arrays["shape"], strict=True):
        person = record.persons[0]
        assert person.smpl_source == "gt"
        np.testing.assert_allclose(person.smpl_pose, pose, rtol=1e-6)
        np.testing.assert_allclose(person.smpl_betas, shape, rtol=1e-6)
    arrays["imgname"] = arrays["imgname"].copy()
    arrays["imgname"][1] = arrays["imgname"][0]  # rows 0 and 1: two people of one image
    np.savez(root / "annotation_body3d" / "fps50" / "h36m_train.npz", **arrays)
    records = convert_all(card, "train")
    assert [len(r.persons) for r in records] == [2, 1, 1, 1, 1]
    second = records[0].persons[1]
    np.testing.assert_allclose(
        second.keypoints_3d[H36M.canonical_indices], arrays["S"][1, :, :3], rtol=1e-6
    )
    np.testing.assert_allclose(second.smpl_pose, arrays["pose"][1], rtol=1e-6)


def test_written_mpi_inf_3dhp_through_the_shipped_card(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCEHMR_DATA", str(tmp_path))
    written = write_mpi_inf_3dhp(tmp_path / "data" / "raw" / "mpi_inf_3dhp")
    card = load_card(DATASETS / "mpi_inf_3dhp.yaml")
    assert card.options["flags"] == "in_frame"

    def key(imgname: str) -> str:
        return re.search(MPI_KEY, imgname).group(1)

    for split, rows in (("train", [0, 5]), ("test", [0, 1])):  # keep_every 5: train only
        records = convert_all(card, split)
        source = written[split]
        assert_rows_as_written(records, source["npz"], rows, MPI_INF_3DHP17, source["cameras"], key)
    # The last test row's wrists lie left of the image: labelled, out of frame, 3-D valid.
    ts2 = records[1].persons[0]
    wrists = MPI_INF_3DHP17.canonical_indices[[4, 7]]
    assert (ts2.keypoints_2d_vis[wrists] == VIS_OUT_OF_FRAME).all()
    assert (ts2.keypoints_2d[wrists][:, 0] < 0).all() and ts2.keypoints_3d_valid[wrists].all()


def test_written_mpi_inf_3dhp_flags_read_as_labels_drop_the_wrists(tmp_path):
    root = tmp_path / "mpi"
    write_mpi_inf_3dhp(root)
    splits = {
        "test": {
            "annotations": "annotations/mpi_inf_3dhp_test_valid.npz",
            "images": "images",
            "cameras": "annotations/cameras_test.pkl",
        }
    }
    options = {"joint_set": "mpi_inf_3dhp17", "camera_key": MPI_KEY}  # flags: labelled
    ts2 = convert_all(make_card(tmp_path, root, splits, options=options), "test")[1].persons[0]
    wrists = MPI_INF_3DHP17.canonical_indices[[4, 7]]
    assert (ts2.keypoints_2d_vis[wrists] == VIS_UNLABELLED).all()
    assert not ts2.keypoints_3d_valid[wrists].any()
