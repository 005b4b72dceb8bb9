"""podium evaluate's numbers are scikit-learn's; the report files; compare; the folder checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from podium.core.errors import InvalidArgument
from podium.core.proto import podium_pb2 as pb
from podium.evaluate import (
    Evaluation,
    Judged,
    Source,
    compare_reports,
    evaluate_through_service,
    report_json,
    wilson_interval,
    write_report_files,
)

LABELS = ["archery", "bmx", "curling", "darts"]


def evaluation(pairs: list[tuple[int, int]], failed: int = 0) -> Evaluation:
    judged = [
        Judged(f"{LABELS[t]}/{n}.jpg", t, (p, (p + 1) % 4, t), 0.5 + 0.1 * (n % 4)) for n, (t, p) in enumerate(pairs)
    ]
    return Evaluation(LABELS, judged, [(f"x/{n}.jpg", "corrupt") for n in range(failed)], {"name": "m", "version": "1"})


def test_the_numbers_are_scikit_learns():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 200)  # class 3 never occurs: zero support
    predicted = np.where(rng.random(200) < 0.7, truth, rng.integers(0, 4, 200))
    report = report_json(evaluation(list(zip(truth.tolist(), predicted.tolist(), strict=True)), failed=3))
    assert report["n_images"] == 200 and report["n_failed"] == 3
    assert report["accuracy"] == pytest.approx(float((truth == predicted).mean()))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=range(4), zero_division=0)
    for i, name in enumerate(LABELS):
        row = report["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        )
    assert report["per_class"]["darts"]["support"] == 0
    assert report["confusion_matrix"] == confusion_matrix(truth, predicted, labels=range(4)).tolist()
    assert report["macro_avg"]["f1"] == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    assert report["weighted_avg"]["f1"] == pytest.approx(
        f1_score(truth, predicted, average="weighted", zero_division=0)
    )
    assert report["top5_accuracy"] == 1.0  # the top-3 hold the true class by construction
    assert len(report["misclassified"]) == int((truth != predicted).sum())
    off_diagonal = [c for t, row in enumerate(report["confusion_matrix"]) for p, c in enumerate(row) if t != p]
    assert report["most_confused"][0]["count"] == max(off_diagonal)
    assert all(a["count"] >= b["count"] for a, b in zip(report["most_confused"], report["most_confused"][1:]))


def test_wilson_interval_of_95_in_500():
    low, high = wilson_interval(478, 500)  # 95.6%, the seeds' ResNet50 on the data set's test split
    assert (round(low, 4), round(high, 4)) == (0.9343, 0.9708)  # ±1.8 points
    assert wilson_interval(0, 0) == (0.0, 0.0)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_report_files_exist_and_the_html_holds_the_figures(tmp_path):
    report = report_json(evaluation([(0, 0), (1, 2), (2, 2), (3, 3), (3, 1)]))
    written = write_report_files(tmp_path / "out", report, images=None)
    assert [p.name for p in written] == ["report.json", "confusion_matrix.png", "report.html"]
    assert json.loads(written[0].read_text())["accuracy"] == 0.6
    assert written[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = written[2].read_text()
    assert "60.00%" in page and "Most confused" in page and page.count('class="card"') == 2


def test_compare_finds_the_flipped_answers():
    a = report_json(evaluation([(0, 0), (1, 1), (2, 3), (3, 0)]))
    b = report_json(evaluation([(0, 0), (1, 2), (2, 2), (3, 1)]))
    comparison = compare_reports(a, b)
    assert comparison.common == 4 and comparison.agreement == 0.25
    assert [f.path for f in comparison.fixed] == ["curling/2.jpg"]
    assert [f.path for f in comparison.broken] == ["bmx/1.jpg"]
    assert [f.path for f in comparison.changed] == ["darts/3.jpg"]
    assert comparison.difference == pytest.approx(0.0)


class FakeClient:
    """The part of PodiumClient an evaluation uses; answers every image with class 0."""

    def classes(self, model=""):
        return pb.ListClassesResponse(classes=LABELS, model_name="m", model_version="1", target="cpu")

    def submit_folder(self, folder, **spec):
        self.paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        return pb.Job(id="0" * 32, state=pb.JOB_STATE_COMPLETED, total=len(self.paths))

    def watch(self, job_id):
        yield pb.Job(id=job_id, state=pb.JOB_STATE_COMPLETED)

    def results(self, job_id):
        for i, path in enumerate(self.paths):
            top = [pb.Prediction(label=LABELS[0], index=0, probability=0.9)]
            yield pb.ImageResult(index=i, path=path, status=pb.IMAGE_STATUS_OK, top_k=top)


def test_folders_that_are_no_class_of_the_model_are_named(tmp_path):
    for rel in ("archery/a.jpg", "bmx/b.jpg", "hockey/c.jpg", "loose.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    with pytest.raises(
        InvalidArgument, match="no class of the served model: \\(files outside any class folder\\), 'hockey'"
    ) as info:
        evaluate_through_service(FakeClient(), Source(folder=tmp_path))
    assert "--ignore-unknown" in info.value.hint
    judged, _ = evaluate_through_service(FakeClient(), Source(folder=tmp_path), ignore_unknown=True)
    assert sorted(j.path for j in judged.judged) == ["archery/a.jpg", "bmx/b.jpg"]


def test_compare_shows_each_side_s_network_and_speed(tmp_path):
    """Two architectures on the same labelled folder: accuracy and images/s side by side."""
    from typer.testing import CliRunner

    from podium.cli.main import build_app

    for name, arch, rate, pairs in (
        ("a", "resnet50", 21.5, [(0, 0), (1, 1), (2, 3), (3, 0)]),
        ("b", "efficientnet_b0", 48.25, [(0, 0), (1, 1), (2, 2), (3, 0)]),
    ):
        document = report_json(evaluation(pairs))
        document["model"] = {"name": f"m_{name}", "version": "1", "target": "cpu", "architecture": arch}
        document["images_per_s"] = rate
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(document))
    result = CliRunner().invoke(
        build_app(), ["compare", str(tmp_path / "a"), str(tmp_path / "b")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "m_a:1" in line or "m_b:1" in line]
    assert "resnet50" in rows[0] and "21.5" in rows[0] and "efficientnet_b0" in rows[1] and "48.2" in rows[1]
