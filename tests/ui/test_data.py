"""What the UI shows, as plain functions: priced listings read as people read them."""

from __future__ import annotations

import io

import pandas as pd

from ui.data import LISTING_LABELS, priced, readable


def test_priced_listings_read_as_people_read_them_and_download_as_uploaded() -> None:
    upload = "city,state,zip_code,house_size,bed\nAustin,Texas,75003,1800,3\nAtlantis,Texas,00601,,\n"
    frame = pd.read_csv(io.StringIO(upload), dtype={"zip_code": str})
    answer = {
        "predictions": [412345.6, 98765.4],
        "intervals": [[300000.2, 560000.9], None],  # None: a chunk answered by a model without a range
        "unseen": [[], ["city"]],
        "versions": [3, 3],
    }
    download = priced(frame, answer)
    columns = ["predicted_price", "price_low", "price_high", "unseen", "model_version"]
    assert list(download.columns) == [*frame.columns, *columns], "raw names"
    shown = readable(download)
    assert list(shown.columns) == [LISTING_LABELS[c] for c in download.columns]
    assert list(shown.index) == [0, 1] and shown.index.name is None
    row = ["Austin", "Texas", "75003", "1,800", "3", "$412,346", "$300,000", "$560,001", "—", "3"]
    assert shown.iloc[0].tolist() == row
    assert shown.iloc[1].tolist() == ["Atlantis", "Texas", "00601", "—", "—", "$98,765", "—", "—", "city", "3"]
    assert not shown.isin(["None", "nan", "NaN"]).any().any()
