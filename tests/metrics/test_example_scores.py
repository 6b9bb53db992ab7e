"""The scores of explanation by example and the Jaccard overlap of chosen sets, on hand-made
explanations whose answers are counted by hand."""

from __future__ import annotations

import torch

from explainbench.explainers.examples import ExampleExplanation
from explainbench.metrics.examples import example_scores, id_overlap
from explainbench.metrics.stability import padded_sets, set_jaccard


def _found():
    # sample 0: examples 4, 7 (labels 1, 1), nearest unfiltered example 9 (label 0)
    # sample 1: examples 2, 3 (labels 0, 1), nearest unfiltered example 2 (label 0)
    return ExampleExplanation(ids=torch.tensor([[4, 7], [2, 3]]),
                              similarity=torch.tensor([[0.9, 0.7], [0.5, 0.1]]),
                              nearest_id=torch.tensor([9, 2]),
                              nearest_similarity=torch.tensor([0.95, 0.5]),
                              nearest_label=torch.tensor([0, 0]))


def test_example_scores_count_what_the_filter_leaves_open():
    labels = torch.tensor([0, 0, 0, 1, 1, 0, 0, 1, 0, 0])
    scores = example_scores(_found(), torch.tensor([1, 0]), labels, "predicted",
                            others=[torch.tensor([[7, 5], [2, 3]])])
    assert torch.allclose(scores["example_similarity"], torch.tensor([0.8, 0.3]).double())
    assert scores["example_nearest_other"].tolist() == [1.0, 0.0]
    assert scores["example_label_agreement"].tolist() == [1.0, 0.5]
    assert scores["example_model_agreement"].tolist() == [0.5, 1.0]


def test_agreement_with_the_true_label_filter_is_not_written():
    scores = example_scores(_found(), torch.tensor([1, 0]), torch.zeros(10).long(), "label")
    assert "example_label_agreement" not in scores and "example_model_agreement" not in scores


def test_id_overlap_and_jaccard_by_hand():
    assert id_overlap(torch.tensor([[1, 2, 3]]), torch.tensor([[3, 4, 1]])).tolist() == [2 / 3]
    # three seeds of two samples; sample 1's second seed chose the empty set
    sets = [torch.tensor([[1, 2], [5, -1]]), torch.tensor([[2, 3], [-1, -1]]),
            torch.tensor([[1, 2, 3], [5, -1, -1]])]
    stack = padded_sets(sets)
    assert stack.shape == (3, 2, 3)
    # sample 0: {1,2}~{2,3} 1/3, {1,2}~{1,2,3} 2/3, {2,3}~{1,2,3} 2/3; sample 1: 0, 1, 0
    assert torch.allclose(set_jaccard(stack), torch.tensor([5 / 9, 1 / 3]).double())
    empty = padded_sets([torch.full((1, 2), -1), torch.full((1, 1), -1)])
    assert set_jaccard(empty).tolist() == [1.0]
