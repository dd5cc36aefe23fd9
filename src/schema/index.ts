export { readSourceSchema, createSection } from './copy.js';
export type { SectionResult } from './copy.js';
export { extractSchema } from './extract/index.js';
export { applySection, SchemaApplier } from './apply.js';
export type { ApplyResult, ApplyOptions } from './apply.js';
export { findUnsupportedObjects } from './unsupported.js';
export { orderObjects } from './order.js';
export type { ExtractedSchema, SchemaObject, Section, ObjectKind, UnsupportedObject } from './model.js';
