"""Teacher stage configuration (defaults: the CPU quickstart; configs/qwen7b-vllm.yaml for the paper's
Qwen-7B-class teacher on GPUs)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TeacherLoraConfig:
    """LoRA adaptation of the teacher on relevance classification (``llm2ctr teacher adapt``)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # module names to adapt; empty = the attention projections of the model family
    target_modules: list[str] = field(default_factory=list)
    lr: float = 2e-4
    epochs: int = 1
    batch_size: int = 8
    max_steps: int = 0  # 0 = no limit (epochs decide)
    max_train_pairs: int = 0  # 0 = every labelled training pair
    grad_accum: int = 1
    save_every: int = 200  # optimizer steps between resumable checkpoints (0 = none)


@dataclass
class TeacherConfig:
    """Teacher backend and embedding job. Owned by the teacher stage."""

    backend: str = "hf"  # hf | onnx (hf's model on onnxruntime, llm2ctr[onnx]) | vllm | openai
    model: str = "minilm"  # "minilm" = packaged all-MiniLM-L6-v2; else a hub id or local path
    revision: str = ""  # hub revision (commit/tag); recorded in the manifest
    trust_remote_code: bool = False
    pooling: str = "mean"  # mean | last
    normalize: bool = True
    batch_size: int = 64
    shard_size: int = 8192  # unique prompts per store shard (one atomic write each)
    max_model_len: int = 512  # tokens; longer prompts are truncated (left side keeps the target)
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16 (auto: float32 on CPU, bfloat16 on GPU)
    device: str = "auto"  # hf backend: auto | cpu | cuda
    hf_impl: str = "auto"  # auto (= transformers, mask-aware pooling) | transformers | sentence_transformers
    # vllm backend
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    # openai backend (any /v1/embeddings server, e.g. `vllm serve MODEL --runner pooling`)
    api_base: str = "http://127.0.0.1:8000/v1"
    api_model: str = ""  # model name sent to the server; empty = `model`
    api_key_env: str = "OPENAI_API_KEY"  # name of the env var holding the key (never logged)
    concurrency: int = 8
    # send vLLM's truncate_prompt_tokens=max_model_len + truncation_side=left (false for servers without them)
    api_truncate: bool = True
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_s: float = 0.5  # first retry delay; doubles each retry (with jitter), capped at 30 s
    # who runs the embed job's shards: this process, or a pool of Ray Data actors (`pip install llm2ctr[ray]`)
    engine: str = "local"  # local | ray (the store is the same either way; a run resumes under either)
    ray_address: str = ""  # "" = start Ray on this machine; "auto" or "ray://head:10001" = an existing cluster
    ray_actors: int = 1  # actors, each holding one backend (one per GPU for vLLM)
    ray_cpus_per_actor: float = 1.0
    ray_gpus_per_actor: float = 0.0  # 1 per vLLM engine on a GPU cluster
    # prompts
    use_rag: bool = True
    template: str = "relevance-v1"
    instruction: str = (
        "Judge how relevant the item is to the search query: 4 exact, 3 substitute, "
        "2 complement, 1 irrelevant. Labelled examples of similar pairs follow."
    )
    max_examples: int = 5  # retrieved neighbours shown
    max_edge_cases: int = 2  # relevance edge cases shown
    # stored dimension reduction
    reduction: str = "none"  # none | pca | matryoshka
    reduced_dim: int = 256
    pca_sample: int = 20000  # prompts embedded to fit the PCA (same sample in every --shard part)
    store_dtype: str = "float16"  # float16 | float32 (reduced stores are always float16)
    use_adapter: bool = False  # embed with the LoRA adapter in {workdir}/teacher/adapter
    lora: TeacherLoraConfig = field(default_factory=TeacherLoraConfig)
