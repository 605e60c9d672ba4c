"""The public names of `trainables`, each loaded on first use (`lazy_loader.attach_stub`)."""

from .classic.pooled import (
    PooledClassifier as PooledClassifier,
    pooled_features as pooled_features,
)
from .classic.rocket import (
    RocketClassifier as RocketClassifier,
)
from .config_base import (
    ConfigBase as ConfigBase,
)
from .configs import (
    MODEL_CONFIGS as MODEL_CONFIGS,
    CNN1DConfig as CNN1DConfig,
    CNNConfig as CNNConfig,
    InceptionTimeConfig as InceptionTimeConfig,
    KNNConfig as KNNConfig,
    LSTMConfig as LSTMConfig,
    MiniRocketConfig as MiniRocketConfig,
    MultiRocketHydraConfig as MultiRocketHydraConfig,
    RandomForestConfig as RandomForestConfig,
    TrainConfig as TrainConfig,
    WaveNetConfig as WaveNetConfig,
)
from .environment import (
    seed_everything as seed_everything,
)
from .fused.many import (
    fit_many as fit_many,
    use_fused as use_fused,
)
from .registry import (
    ModelSpec as ModelSpec,
    build_model as build_model,
    get_model_spec as get_model_spec,
    make_model_config as make_model_config,
    model_names as model_names,
    split_flat_config as split_flat_config,
)
from .training.batching import (
    bucket_batches as bucket_batches,
)
from .training.loop import (
    fit as fit,
)
from .training.metrics import (
    SCALAR_METRICS as SCALAR_METRICS,
    classification_metrics as classification_metrics,
)
from .training.predict import (
    predict_proba as predict_proba,
)
from .training.result import (
    EpochCallback as EpochCallback,
    FitResult as FitResult,
)
