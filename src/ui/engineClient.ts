/**
 * The page's one engine worker client: the model picker loads models into it and the run and
 * sweep panels run on it, so they must share it. Created on first use (the worker starts then).
 */
import { EngineClient } from '../engine/client';

let client: EngineClient | null = null;

export function engineClient(): EngineClient {
  client ??= new EngineClient();
  return client;
}
