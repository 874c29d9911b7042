/**
 * scripts/k8s-check.ts (`make k8s-check`) refuses what it is there to refuse, on objects built here (no kustomize,
 * no files): a field no schema knows, a container without a limit, a container that may run as root, a literal
 * secret, an unpinned production image, a Deployment no disruption budget covers. The rendered manifests
 * themselves are checked by `make k8s-check`.
 */
import { expect } from 'chai';
import { Deployment } from 'kubernetes-models/apps/v1';
import { DEV_ONLY_ANNOTATION, LONG_RUNNING_ROLES, checkObjects } from '../../scripts/k8s-check.js';
import type { K8sObject } from '../../scripts/k8s-check.js';

const LABELS = { 'app.kubernetes.io/name': 'payouts' };

function container(role: string) {
  return {
    name: role,
    image: 'registry.example.com/payouts-service:0.1.0',
    args: [role],
    ports: [{ name: 'ops', containerPort: 9100 }],
    env: [
      {
        name: 'DATABASE_URL',
        valueFrom: { secretKeyRef: { name: 'payouts-secrets', key: 'DATABASE_URL' } },
      },
    ],
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '256Mi' } },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
  };
}

function deployment(role: string): K8sObject {
  const labels = { ...LABELS, 'app.kubernetes.io/component': role };
  const probe = (path: string) => ({ httpGet: { path, port: 'ops' } });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `payouts-${role}`, namespace: 'payouts' },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 1000 },
          terminationGracePeriodSeconds: 45,
          containers: [
            { ...container(role), livenessProbe: probe('/healthz'), readinessProbe: probe('/readyz') },
          ],
        },
      },
    },
  };
}

/** The smallest set of objects that passes: a Deployment per role, the migration Job, a budget, a default deny. */
function valid(): K8sObject[] {
  return [
    ...LONG_RUNNING_ROLES.map(deployment),
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'payouts-migrate', namespace: 'payouts' },
      spec: {
        template: {
          spec: {
            restartPolicy: 'Never',
            securityContext: { runAsNonRoot: true, runAsUser: 1000 },
            containers: [container('migrate')],
          },
        },
      },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'payouts', namespace: 'payouts' },
      spec: { maxUnavailable: 1, selector: { matchLabels: LABELS } },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'payouts-default-deny', namespace: 'payouts' },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    },
  ];
}

function api(objects: K8sObject[]): K8sObject {
  return objects[0]!.spec.template.spec.containers[0] as K8sObject;
}

describe('k8s-check', () => {
  it('passes a valid set of objects', () => {
    expect(checkObjects(valid(), 'prod')).to.deep.equal([]);
  });

  it('refuses a field no schema knows, where validate() alone lets it through', () => {
    const objects = valid();
    api(objects).resources.limitz = { memory: '1Gi' };
    objects[0]!.spec.replica = 2;
    expect(() => new Deployment(objects[0]).validate()).not.to.throw();
    expect(checkObjects(objects, 'prod')).to.deep.equal([
      'Deployment/payouts-api: unknown field .spec.template.spec.containers[0].resources.limitz',
      'Deployment/payouts-api: unknown field .spec.replica',
    ]);
  });

  it("refuses an unknown field in KEDA's ScaledObject, and accepts its trigger's metadata map", () => {
    const scaledObject = {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: 'payouts-worker', namespace: 'payouts' },
      spec: {
        scaleTargetRef: { name: 'payouts-worker' },
        triggers: [
          {
            type: 'rabbitmq',
            metadata: { queueName: 'payouts.process', mode: 'QueueLength', value: '256' },
            authRef: { name: 'payouts-rabbitmq' },
          },
        ],
      },
    };
    expect(checkObjects([...valid(), scaledObject], 'prod')).to.deep.equal([
      'ScaledObject/payouts-worker: unknown field .spec.triggers[0].authRef',
    ]);
  });

  it('refuses a schema error', () => {
    const objects = valid();
    api(objects).ports[0].containerPort = 'ops';
    expect(checkObjects(objects, 'prod')).to.have.length(1);
    expect(checkObjects(objects, 'prod')[0]).to.match(/^Deployment\/payouts-api: .*containerPort/);
  });

  it('refuses a container without a limit', () => {
    const objects = valid();
    delete api(objects).resources.limits.memory;
    expect(checkObjects(objects, 'prod')).to.deep.equal([
      'Deployment/payouts-api container api: no limits.memory',
    ]);
  });

  it('refuses a container that may run as root', () => {
    const objects = valid();
    delete objects[0]!.spec.template.spec.securityContext.runAsNonRoot;
    const rootUser = valid();
    api(rootUser).securityContext.runAsUser = 0;
    expect(checkObjects(objects, 'prod')).to.deep.equal([
      'Deployment/payouts-api container api: may run as root (runAsNonRoot is not true)',
    ]);
    expect(checkObjects(rootUser, 'prod')).to.deep.equal([
      'Deployment/payouts-api container api: runs as root (runAsUser 0)',
    ]);
  });

  it('refuses a writable root filesystem, privilege escalation and a missing probe', () => {
    const objects = valid();
    api(objects).securityContext = { readOnlyRootFilesystem: false };
    delete api(objects).readinessProbe;
    expect(checkObjects(objects, 'prod')).to.deep.equal([
      'Deployment/payouts-api container api: root filesystem is not read-only',
      'Deployment/payouts-api container api: allowPrivilegeEscalation is not false',
      'Deployment/payouts-api container api: no readinessProbe',
    ]);
  });

  it('refuses a literal secret, in a container or in a ConfigMap', () => {
    const objects = valid();
    api(objects).env = [
      { name: 'DATABASE_URL', value: 'postgres://payouts_app:hunter2@postgres:5432/payouts' },
      { name: 'UPSTREAM', value: 'https://user:hunter2@example.com/' },
      { name: 'LOG_LEVEL', value: 'info' },
    ];
    objects.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'payouts-config', namespace: 'payouts' },
      data: { WEBHOOK_SECRET_KEY: 'x', PORT: '8000' },
    });
    expect(checkObjects(objects, 'prod')).to.deep.equal([
      'Deployment/payouts-api container api: DATABASE_URL is a literal value, not a secretKeyRef',
      'Deployment/payouts-api container api: UPSTREAM carries a password in a literal value',
      'ConfigMap/payouts-config: WEBHOOK_SECRET_KEY belongs in a Secret',
    ]);
  });

  it('refuses a Secret with values outside the dev overlay, and an unmarked one in it', () => {
    const secret = (annotations: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'payouts-secrets', namespace: 'payouts', annotations },
      data: { AMQP_URL: Buffer.from('amqp://payouts:payouts@rabbitmq:5672').toString('base64') },
    });
    const marked = secret({ [DEV_ONLY_ANNOTATION]: 'true' });
    expect(checkObjects([...valid(), marked], 'dev')).to.deep.equal([]);
    expect(checkObjects([...valid(), secret({})], 'dev')).to.have.length(1);
    expect(checkObjects([...valid(), marked], 'prod')).to.have.length(1);
    expect(checkObjects([...valid(), marked], 'base')).to.have.length(1);
  });

  it('refuses an image tagged latest, or not tagged, in prod only', () => {
    const latest = valid();
    api(latest).image = 'registry.example.com/payouts-service:latest';
    const untagged = valid();
    api(untagged).image = 'registry.example.com:5000/payouts-service';
    expect(checkObjects(latest, 'prod')).to.deep.equal([
      'Deployment/payouts-api container api: image registry.example.com/payouts-service:latest is not pinned to a tag',
    ]);
    expect(checkObjects(untagged, 'prod')).to.have.length(1);
    expect(checkObjects(latest, 'dev')).to.deep.equal([]);
  });

  it('refuses a Deployment no PodDisruptionBudget selects, and a missing default deny', () => {
    const objects = valid().filter(
      (object) => object.kind !== 'PodDisruptionBudget' && object.kind !== 'NetworkPolicy',
    );
    const problems = checkObjects(objects, 'prod');
    expect(problems).to.include('Deployment/payouts-worker: no PodDisruptionBudget selects its pods');
    expect(problems).to.include('NetworkPolicy: no default deny of ingress (podSelector {} with no rule)');
  });

  it('refuses ops ports open beyond the monitoring namespace', () => {
    const objects = valid();
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'payouts-ops', namespace: 'payouts' },
      spec: {
        podSelector: { matchLabels: LABELS },
        ingress: [{ ports: [{ protocol: 'TCP', port: 'ops' }] }],
      },
    });
    expect(checkObjects(objects, 'prod')).to.deep.equal([
      "NetworkPolicy/payouts-ops: open to any source, but not only the API's public port",
    ]);
  });
});
