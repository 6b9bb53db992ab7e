"""The model zoo's architectures. Every forward returns logits (B, classes) as a plain tensor.

Image models take raw pixels in [0, 1] shaped (B, 1, 28, 28) and normalise inside, so that a
"zero" substrate means a black pixel. Text models take token ids (B, L); the attention mask is
derived from the [PAD] id inside, so a model is a function of one tensor, which is what Captum and
shap expect.

Every activation is its own module, never reused, never in-place, never functional: DeepLift and
shap.DeepExplainer attach their rules to activation modules and give wrong attributions otherwise.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class Normalize(nn.Module):
    def __init__(self, mean: float, std: float):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean), persistent=False)
        self.register_buffer("std", torch.tensor(std), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MnistCNN(nn.Sequential):
    """Two 3x3 convolutions (32, 64 channels) with max-pooling, then a 128-unit hidden layer.

    `conv2` is the last convolution (14x14 maps) that Grad-CAM reads. Explanation by example
    compares `flatten` (the 3,136 pooled conv2 activations: the layer after the last convolution,
    ExMatchina's choice) or `relu3` (the last hidden layer).
    """

    gradcam_layer = "conv2"
    hidden_layer = "relu3"
    example_layers = {"flatten": "flatten", "hidden": "relu3"}
    output_layer = "fc2"

    def __init__(self, dropout: float = 0.25):
        super().__init__(
            OrderedDict(
                normalize=Normalize(MNIST_MEAN, MNIST_STD),
                conv1=nn.Conv2d(1, 32, 3, padding=1),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(32, 64, 3, padding=1),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                flatten=nn.Flatten(),
                fc1=nn.Linear(64 * 7 * 7, 128),
                relu3=nn.ReLU(),
                dropout=nn.Dropout(dropout),
                fc2=nn.Linear(128, 10),
            )
        )


class MnistLogReg(nn.Sequential):
    """Multinomial logistic regression on raw pixels: logits z = W x + b, no normalisation, so the
    exact attributions are known in closed form (input x gradient = W[c] * x)."""

    hidden_layer = "flatten"
    example_layers = {"flatten": "flatten", "hidden": "flatten"}  # no hidden layer: the pixels
    output_layer = "linear"

    def __init__(self):
        super().__init__(OrderedDict(flatten=nn.Flatten(), linear=nn.Linear(28 * 28, 10)))

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight  # (10, 784)

    @property
    def bias(self) -> torch.Tensor:
        return self.linear.bias


class TextClassifier(nn.Module):
    """Common surface of the text models: ids -> logits, and the embedding-level entry points that
    gradient explainers need (attributions are taken at the word-embedding layer)."""

    pad_id: int

    def attention_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        return (input_ids != self.pad_id).long()

    @property
    def embedding_layer(self) -> nn.Embedding:
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.forward_embeds(self.embedding_layer(input_ids), self.attention_mask(input_ids))

    def forward_embeds(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Last hidden layer (the classifier's input), for explanation by example."""
        return self.example_representation(input_ids, "hidden")[0]

    def example_representation(self, input_ids: torch.Tensor,
                               layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(activations, logits) in one pass, for explanation by example: `layer` "flatten" is
        the output of the feature extractor, the part the last convolution plays in ExMatchina's
        CNNs; "hidden" is the classifier's input."""
        raise NotImplementedError


class TransformerClassifier(TextClassifier):
    """A BERT-style encoder from a config (no pretrained weights), eager attention so that the
    attention probabilities come back. Classification reads the [CLS] token at position 0."""

    output_layer = "bert.classifier"

    def __init__(self, vocab_size: int, max_len: int, pad_id: int, hidden: int = 128,
                 layers: int = 2, heads: int = 2, intermediate: int = 512, dropout: float = 0.1):
        super().__init__()
        from transformers import BertConfig, BertForSequenceClassification

        config = BertConfig(
            vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=intermediate,
            max_position_embeddings=max_len, type_vocab_size=1, pad_token_id=pad_id,
            hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, num_labels=2,
        )
        self.pad_id = pad_id
        self.bert = BertForSequenceClassification._from_config(config, attn_implementation="eager")

    @property
    def embedding_layer(self) -> nn.Embedding:
        return self.bert.bert.embeddings.word_embeddings

    def forward_embeds(self, embeds, attention_mask):
        # inputs_embeds replaces only the word embeddings; position embeddings and LayerNorm
        # are still applied inside BERT, as they are for ids.
        return self.bert(inputs_embeds=embeds, attention_mask=attention_mask).logits

    def attentions(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Attention probabilities per layer, each (B, heads, L, L)."""
        out = self.bert(input_ids=input_ids, attention_mask=self.attention_mask(input_ids),
                        output_attentions=True)
        return out.attentions

    def example_representation(self, input_ids, layer):
        """"flatten": the [CLS] state the last encoder block outputs (the encoder is the feature
        extractor; the pooler's dense + tanh on it is the first layer of the classification
        head, as the CNN's fc1 + relu3 is); "hidden": the pooler's output, the classifier's
        input. The logits are the classifier's, as `forward` computes them (dropout is off in
        eval mode)."""
        out = self.bert.bert(input_ids=input_ids, attention_mask=self.attention_mask(input_ids))
        logits = self.bert.classifier(self.bert.dropout(out.pooler_output))
        activations = out.last_hidden_state[:, 0] if layer == "flatten" else out.pooler_output
        return activations, logits


def run_lstm(lstm: nn.LSTM, embeds: torch.Tensor) -> torch.Tensor:
    """The LSTM's outputs (B, L, directions x hidden). cuDNN's RNN backward runs only on a module
    in training mode, and explainers take gradients of eval-mode models: this switched cuDNN off
    for every gradient explainer on a GPU. An LSTM without dropout (ours: one layer, dropout 0)
    computes the same in either mode, so the module is put in training mode for that call only
    and cuDNN does the work (on the CPU the mode changes nothing)."""
    if lstm.training or lstm.dropout or not torch.is_grad_enabled() or not embeds.is_cuda:
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled
                                        and (lstm.training or not torch.is_grad_enabled())):
            return lstm(embeds)[0]
    lstm.train()
    try:
        return lstm(embeds)[0]
    finally:
        lstm.eval()


class LSTMClassifier(TextClassifier):
    """Bidirectional LSTM; the masked mean and max of its outputs over the real tokens feed a
    linear classifier.

    Every row is padded to the same length, so a row's output never depends on the other rows of
    its batch. Packed sequences would skip the padding too, but cost 4x more per step on the CPU
    with variable lengths; [PAD]'s embedding is fixed at zero instead and the pooling ignores it.
    """

    output_layer = "classifier"

    def __init__(self, vocab_size: int, pad_id: int, embed_dim: int = 128, hidden: int = 128):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.classifier = nn.Linear(4 * hidden, 2)

    @property
    def embedding_layer(self) -> nn.Embedding:
        return self.embedding

    def _encode(self, embeds, attention_mask):
        outputs = run_lstm(self.lstm, embeds)
        mask = attention_mask.unsqueeze(-1).to(outputs.dtype)
        mean = (outputs * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        peak = outputs.masked_fill(mask == 0, torch.finfo(outputs.dtype).min).amax(1)
        return torch.cat([mean, peak], dim=1)

    def forward_embeds(self, embeds, attention_mask):
        return self.classifier(self._encode(embeds, attention_mask))

    def example_representation(self, input_ids, layer):
        """Both layers are the masked mean and max of the LSTM's states: the LSTM is the feature
        extractor and its pooling feeds the linear classifier directly, so the layer after the
        feature extractor is the classifier's input (as the pooled, flattened maps of a CNN
        without dense layers would be)."""
        pooled = self._encode(self.embedding(input_ids), self.attention_mask(input_ids))
        return pooled, self.classifier(pooled)


class LSTMAttentionClassifier(TextClassifier):
    """Jain & Wallace 2019's BiLSTM with additive (tanh) attention, as in their code
    (github.com/successar/AttentionExplanation, model/modules/{Encoder,Attention,Decoder}.py):
    embedding -> BiLSTM (`hidden` units per direction) -> attention a = softmax(v . tanh(W h))
    over the real tokens, W: 2h -> h, v: h -> 1 without bias -> context sum_t a_t h_t -> linear.

    Where this differs from theirs (stated on the model card): the embedding is trained from
    scratch (theirs starts from pretrained vectors, which cannot be downloaded here); two logits
    and a softmax instead of one logit and a sigmoid (the same function of the inputs: p(1) =
    sigmoid(l1 - l0)); rows are padded to one length instead of packed, [PAD]'s embedding fixed
    at zero and masked out of the attention, as for `LSTMClassifier`; [CLS] takes the place of
    their <SOS> (attended to, left out of every comparison) and there is no <EOS>.
    """

    output_layer = "classifier"

    def __init__(self, vocab_size: int, pad_id: int, embed_dim: int = 300, hidden: int = 128):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.attn1 = nn.Linear(2 * hidden, hidden)
        self.attn2 = nn.Linear(hidden, 1, bias=False)
        self.classifier = nn.Linear(2 * hidden, 2)

    @property
    def embedding_layer(self) -> nn.Embedding:
        return self.embedding

    def _states(self, embeds):
        return run_lstm(self.lstm, embeds)

    def _attention(self, states, attention_mask):
        scores = self.attn2(torch.tanh(self.attn1(states))).squeeze(-1)
        scores = scores.masked_fill(attention_mask == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def attend(self, embeds, attention_mask, *, weights=None, detach_attention: bool = False):
        """(logits, attention weights (B, L)). `weights` replaces the model's own attention (the
        permutation test); `detach_attention` treats the weights as constants under
        differentiation, as Jain & Wallace's gradient importance does."""
        states = self._states(embeds)
        own = self._attention(states, attention_mask)
        used = own if weights is None else weights.to(states.dtype)
        if detach_attention:
            used = used.detach()
        context = (used.unsqueeze(-1) * states).sum(1)
        return self.classifier(context), own

    def forward_embeds(self, embeds, attention_mask):
        return self.attend(embeds, attention_mask)[0]

    def outputs_with_attention(self, input_ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Logits (B, n, classes) with each of n attention rows (B, n, L) in place of the model's
        own: the states are computed once, only the context changes (the permutation test)."""
        states = self._states(self.embedding(input_ids))
        context = torch.einsum("bnl,blh->bnh", weights.to(states.dtype), states)
        return self.classifier(context)

    def additive_attention(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The attention weights (B, L): positive on the real tokens ([CLS] included), 0 on
        [PAD], summing to 1 per row."""
        return self.attend(self.embedding(input_ids), self.attention_mask(input_ids))[1]

    def example_representation(self, input_ids, layer):
        """Both layers are the attention's context vector, the classifier's input (the BiLSTM
        with its attention is the feature extractor)."""
        embeds = self.embedding(input_ids)
        mask = self.attention_mask(input_ids)
        states = self._states(embeds)
        context = (self._attention(states, mask).unsqueeze(-1) * states).sum(1)
        return context, self.classifier(context)
