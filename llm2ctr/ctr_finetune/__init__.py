"""ctr_finetune stage."""
