"""The networks: small torch `nn.Module`s, one per family, on shared masked layers.

Each ``build_<family>(config, *, input_dim, n_classes)`` returns a `SequenceClassifier`
taking ``x`` [shape=(batch, T, D)] and ``lengths`` [shape=(batch,)] and returning
logits [shape=(batch, n_classes)]; `Fitted` puts the input standardisation in front.
The registry (`trainables.registry`) maps a family's name to its builder.
"""

import lazy_loader

# each name is loaded from its module on first use (like the package's own face)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "layers": ["SequenceClassifier", "TokenEmbedding", "MaskedBatchNorm", "masked_pool", "time_mask"],
        "lstm": ["LSTMClassifier", "build_lstm"],
        "cnn": ["CNNClassifier", "CNN1DClassifier", "build_cnn", "build_cnn1d"],
        "wavenet": ["WaveNetClassifier", "build_wavenet"],
        "inception": ["InceptionTimeClassifier", "build_inception_time"],
        "fitted": ["Fitted", "feature_stats"],
    },
)
