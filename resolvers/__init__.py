"""Operations both surfaces (GraphQL and REST) call: tracking, metrics, funnels,
websites, privacy; per-request dataloaders; cache policy."""
