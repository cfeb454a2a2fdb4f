"""Every layer of the valid-layer corpus (containers_storage.testing.validlayers), imported
through every driver on its real backing filesystem, checks clean: check never calls a
valid layer damaged, so repair never removes one (issue 20: an empty layer and its image
were repaired away)."""

from __future__ import annotations

import io

from containers_storage.store import CheckOptions
from containers_storage.testing.validlayers import CASES, needs

from .harness import Cli, Tally


def test_every_valid_layer_checks_clean_through_the_driver(cli: Cli, tally: Tally) -> None:
    made: dict[str, str] = {}
    with cli.store() as s:
        for case, build in CASES.items():
            if needs(case):
                continue
            parent = ""
            for blob in build():
                layer, _ = s.put_layer(parent=parent, diff=io.BytesIO(blob))
                parent = layer.id
            made[s.create_image(names=[case], layer=parent).id] = case
            tally.runs += 1
        report = s.check(CheckOptions.everything())
        flagged = {made.get(i, i): [str(e) for e in errs] for i, errs in report.images.items()}
        assert not flagged, f"check flags valid layers: {flagged}"
        assert not report.layers and not report.containers, report
        assert not s.repair(report)
        assert len(s.images()) == len(made)
