/** Test helpers: the app's seeded random data and the kernels' error measure, in one import. */
export { randomFloats, seededRandom } from '../../src/engine/random';
export { maxAbsError } from '../../src/kernels/compare';
