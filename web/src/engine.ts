// One worker for the whole app, plus the model-loading state that every page reads.

import { useSyncExternalStore } from 'react';
import { InferenceClient } from './worker/client';
import type { ModelKind, Response } from './worker/protocol';
import { initialModelState, modelReducer, parseUrlOptions, type ModelEvent, type ModelState } from './lib/state';

// Relative on purpose: the built site works from any sub-path with the models next to it.
export const MODEL_PATHS: Record<ModelKind, string> = {
  classifier: import.meta.env.VITE_CLASSIFIER_URL || 'models/classifier/classifier.int8.onnx',
  generator: import.meta.env.VITE_GENERATOR_URL || 'models/generator/generator.int8.onnx',
};

export const urlOptions = parseUrlOptions(location.search);

type States = Record<ModelKind, ModelState>;

class Engine {
  readonly client: InferenceClient;
  private states: States = { classifier: initialModelState, generator: initialModelState };
  private listeners = new Set<() => void>();
  private loads: Partial<Record<ModelKind, Promise<void>>> = {};

  constructor() {
    const worker = new Worker(new URL('./worker/worker.ts', import.meta.url), { type: 'module', name: 'inference' });
    this.client = new InferenceClient(worker);
  }

  subscribe = (fn: () => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  get(model: ModelKind): ModelState {
    return this.states[model];
  }

  private dispatch(model: ModelKind, ev: ModelEvent) {
    this.states = { ...this.states, [model]: modelReducer(this.states[model], ev) };
    for (const fn of this.listeners) fn();
  }

  /** Loads a model once; after a failure the next call tries again. */
  ensure(model: ModelKind): Promise<void> {
    if (!this.loads[model]) {
      this.dispatch(model, { type: 'start' });
      this.loads[model] = this.client
        .request(
          {
            type: 'load',
            model,
            url: new URL(MODEL_PATHS[model], document.baseURI).href,
            ep: urlOptions.ep,
            ortBase: new URL('ort/', document.baseURI).href,
            threads: urlOptions.threads,
            useCache: !urlOptions.noCache,
            foldQdq: urlOptions.foldQdq,
          },
          (ev: Response) => this.dispatch(model, ev),
        )
        .then((r) => this.dispatch(model, r))
        .catch((e: Error) => {
          this.dispatch(model, { type: 'failed', message: e.message });
          delete this.loads[model];
          throw e;
        });
    }
    return this.loads[model]!;
  }
}

export const engine = new Engine();

export function useModel(model: ModelKind): ModelState {
  return useSyncExternalStore(engine.subscribe, () => engine.get(model));
}
