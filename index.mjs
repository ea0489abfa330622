// ESM entry: the same class as `require('callosum-client-tcp')`.
import CallosumClient from './index.js';

export default CallosumClient;
export { CallosumClient };
export const { Rover } = CallosumClient;
