{{/* The tiny Experiment `helm test` applies: 2 trials of a one-line python scorer, no training. */}}
{{- define "kubetune.testExperiment" -}}
apiVersion: kubetune.io/v1alpha1
kind: Experiment
metadata:
  generateName: helm-test-
  namespace: {{ include "kubetune.testNamespace" . }}
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/component: helm-test
spec:
  objective: {metric: score, goal: maximize}
  algorithm: {name: random, seed: 1}
  maxTrials: 2
  parallelTrials: 2
  parameters:
    - {name: x, type: double, min: 0.0, max: 1.0}
  trialTemplate:
    spec:
      backoffLimit: 0
      activeDeadlineSeconds: 120
      template:
        spec:
          restartPolicy: Never
          enableServiceLinks: false
          {{- with .Values.imagePullSecrets }}
          imagePullSecrets:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            seccompProfile: {type: RuntimeDefault}
          containers:
            - name: trial
              image: {{ include "kubetune.testImage" . | quote }}
              imagePullPolicy: {{ .Values.test.image.pullPolicy }}
              command:
                - python
                - -c
                - "import json, os; x = float(os.environ['KUBETUNE_PARAM_X']); json.dump({'score': round(1 - 0.5 * (x - 0.3) ** 2, 6)}, open('/dev/termination-log', 'w'))"
              resources:
                requests: {cpu: 50m, memory: 64Mi}
                limits: {memory: 128Mi}
              securityContext:
                allowPrivilegeEscalation: false
                readOnlyRootFilesystem: true
                capabilities: {drop: [ALL]}
{{- end }}
