/// <reference types="vite/client" />

interface ImportMetaEnv {
  readonly VITE_CLASSIFIER_URL?: string;
  readonly VITE_GENERATOR_URL?: string;
}
