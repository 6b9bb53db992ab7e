"""Jain & Wallace 2019 ("Attention is not Explanation", NAACL), their two importance measures for
text, as their code computes them (github.com/successar/AttentionExplanation,
model/Binary_Classification.py and Trainers/PlottingBC.py):

- `jw_gradient`: gradient importance |sum_d (dp/de_d) e_d| per token: the gradient of the
  predicted probability with respect to the token's embedding, dotted with the embedding, then the
  absolute value (their `XxE[X]`, `np.abs(...)`). With additive attention the weights are held
  constant under differentiation (their `batch_data.detach = True`), so the gradient flows through
  the hidden states only; on models without such a layer it is plain gradient x embedding.
- `leave_one_out`: |p(x) - p(x without token t)|: the token deleted and the rest of the review
  moved up one place (their `remove_and_run`), not masked.

Both are unsigned, and both explain the target class's probability where Jain & Wallace read the
positive class's sigmoid: with two classes the changes are equal and opposite, so the absolute
values are the same. Differences from their code: the model is in eval mode (theirs is left in
train mode, without dropout in this architecture); padding is fixed-length rather than packed
(a deleted token leaves one more [PAD] at the end).
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.core.params import Bool
from explainbench.explainers.base import Explainer
from explainbench.explainers.gradients import chunks


def target_probability(logits: Tensor, targets: Tensor) -> Tensor:
    return torch.softmax(logits.float(), dim=-1).gather(1, targets.view(-1, 1)).squeeze(1)


class JainWallaceGradient(Explainer):
    """|(dp/de) . e| per token, attention weights held constant (see the module docstring)."""

    name = "jw_gradient"
    modalities = frozenset({"text"})
    needs_gradients = True
    parameters = {"detach_attention": Bool(True, "hold additive attention weights constant")}
    reference = "Jain & Wallace 2019, gradient importance (their code's XxE[X])"

    def cost(self, modality, features):
        return 1.0, 1.0

    def attribute(self, model, task, inputs, targets, *, seed):
        out = []
        detach = bool(self.params["detach_attention"])
        for part in chunks(len(inputs), self.batch_size):
            ids = inputs[part]
            mask = model.attention_mask(ids)
            embeds = model.embedding_layer(ids).detach().requires_grad_()
            with torch.enable_grad():
                if hasattr(model, "attend"):
                    logits = model.attend(embeds, mask, detach_attention=detach)[0]
                else:
                    logits = model.forward_embeds(embeds, mask)
                p = target_probability(logits, targets[part])
                (grad,) = torch.autograd.grad(p.sum(), embeds)
            out.append((grad * embeds.detach()).sum(-1).abs())
        return torch.cat(out)


def without_tokens(inputs: Tensor, rows: Tensor, positions: Tensor, pad_id: int) -> Tensor:
    """(P, L): review `rows[j]` of `inputs` (B, L) with its token at `positions[j]` deleted and
    the rest moved up one place, [PAD] appended at the end."""
    length = inputs.shape[1]
    source = torch.arange(length, device=inputs.device).expand(len(rows), -1)
    source = source + (source >= positions[:, None]).long()  # skip the deleted token
    padded = torch.cat([inputs[rows], inputs.new_full((len(rows), 1), pad_id)], dim=1)
    return padded.gather(1, source)


class LeaveOneOut(Explainer):
    """|p(x) - p(x with token t deleted)| for every word (see the module docstring)."""

    name = "leave_one_out"
    modalities = frozenset({"text"})
    reference = "Jain & Wallace 2019, leave-one-out importance (their code's remove_and_run)"

    def cost(self, modality, features):
        return float(features) + 1.0, 0.0

    def attribute(self, model, task, inputs, targets, *, seed):
        pairs = task.feature_mask(inputs).nonzero()  # (P, 2): every (review, word position)
        out = torch.zeros(inputs.shape, dtype=torch.float32, device=inputs.device)
        with torch.no_grad():
            base = task.probabilities(model, inputs, self.batch_size).gather(
                1, targets.view(-1, 1)).squeeze(1).float()
            for part in chunks(len(pairs), self.batch_size):  # deletions of several reviews
                rows, positions = pairs[part, 0], pairs[part, 1]
                variants = without_tokens(inputs, rows, positions, task.tokenizer.pad_id)
                p = target_probability(model(variants), targets[rows])
                out[rows, positions] = (p - base[rows]).abs()
        return out
