"""Scores of explanation by example (explainers/examples.py), per sample.

With ExMatchina's label filter every example shown carries the explained class by construction,
so agreement with that label scores nothing; what the filter does not fix is scored instead:
  example_similarity       mean cosine similarity of the k examples: are they close at all?
  example_nearest_other    1 when the nearest training example *without* the filter has another
                           label (the filter's kind) than the explained class, else 0: the
                           closest thing the model knows disagrees, a sign the prediction is
                           fragile, which the filtered examples hide (lower is better)
  example_label_agreement  share of the k examples whose true label is the explained class;
                           written only when the filter does not make it 1 (label_filter
                           predicted: the model's labels of its training examples are not always
                           the true ones; none: the earlier, unfiltered examples)
  example_model_agreement  share of the k examples that another model of the same task, explaining
                           the same sample with the same settings (its own prediction), also
                           returns, |ids_a & ids_b| / k, averaged over the other models of the
                           experiment: are the examples the data's or one model's? Computed per
                           sample wherever an experiment runs two models of a task.
"""

from __future__ import annotations

import torch
from torch import Tensor

EXAMPLE_METRICS = {  # name -> higher is better
    "example_similarity": True,
    "example_nearest_other": False,
    "example_label_agreement": True,
    "example_model_agreement": True,
}


def id_overlap(ids: Tensor, other: Tensor) -> Tensor:
    """(B,) share of each row of `ids` (B, k) that also appears in the same row of `other`
    (B, k'), divided by k."""
    hits = (ids[:, :, None] == other[:, None, :]).any(dim=2)
    return hits.double().mean(dim=1)


def example_scores(found, targets: Tensor, train_labels: Tensor, label_filter: str,
                   others: list[Tensor] = ()) -> dict[str, Tensor]:
    """{score name: (B,) float64} for an `ExampleExplanation`; `others` are the example ids other
    models found for the same samples."""
    targets = targets.to(found.ids.device)
    scores = {
        "example_similarity": found.similarity.double().mean(dim=1),
        "example_nearest_other": (found.nearest_label != targets).double(),
    }
    if label_filter != "label":
        shown = train_labels.to(found.ids.device)[found.ids]
        scores["example_label_agreement"] = (shown == targets[:, None]).double().mean(dim=1)
    if others:
        scores["example_model_agreement"] = torch.stack(
            [id_overlap(found.ids, o.to(found.ids.device)) for o in others]).mean(dim=0)
    return scores
