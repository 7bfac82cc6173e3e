export * from './context';
export * from './buffers';
export * from './timer';
export * from './shaders';
export * from './f16';
export { PipelineCache } from './pipelines';
export { StepScratch } from './scratch';
