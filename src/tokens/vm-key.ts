// The key of a job's VM: the broker gives it to the customer with the boot token,
// the node derives it from its secret, so the customer's upload into the cstrap
// (and the VM's own checkpoints) are keyed without it ever crossing the network.
import { mac } from './mac.js';

export const vmKey = (nodeSecret: Buffer, jobId: Buffer): Buffer => mac(nodeSecret, 'roam-vm-key-v1', jobId);
