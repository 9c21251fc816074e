"""Usage: python3 extract.py $(go env GOMODCACHE)/k8s.io/apimachinery@v0.37.2/pkg/util/strategicpatch/patch_test.go > upstream-cases.json

Extracts the strategic merge patch application cases of k8s.io/apimachinery v0.37.2's
strategicpatch/patch_test.go into JSON: one application (document, patch, expected result or
expected error) per two-way and three-way case."""
import json, re, sys, yaml

src = open(sys.argv[1]).read()

def yaml_block(var):
    m = re.search(r'var %s = \[\]byte\(`(.*?)`\)' % var, src, re.S)
    return yaml.safe_load(m.group(1))['testCases']

def raw_cases(var):
    m = re.search(r'var %s = \[\]StrategicMergePatchRawTestCase\{(.*?)\n\}\n' % var, src, re.S)
    body = m.group(1)
    out = []
    for chunk in re.split(r'\n\t\{\n', body)[1:]:
        d = re.search(r'Description: "(.*?)"', chunk)
        case = {'description': d.group(1)}
        for f in ['Original', 'TwoWay', 'Modified', 'Current', 'ThreeWay', 'Result', 'TwoWayResult']:
            fm = re.search(r'\b%s: \[\]byte\(`(.*?)`\)' % f, chunk, re.S)
            if fm:
                case[f[0].lower() + f[1:]] = yaml.safe_load(fm.group(1))
        em = re.search(r'ExpectedError: "(.*?)"', chunk)
        if em:
            case['expectedError'] = em.group(1)
        out.append(case)
    return out

UNSUPPORTED = ('mergeItemPtr', 'replacingItem', 'jsonItem')

def uses_unsupported(case):
    return any(u in json.dumps(case) for u in UNSUPPORTED)

applications = []
def add(set_name, case, sort):
    if uses_unsupported(case):
        return
    d = case['description']
    two_way_expected = case.get('twoWayResult') or case.get('modified')
    if 'twoWay' in case:
        a = {'set': set_name, 'description': d + ' (two-way)', 'sorted': sort,
             'document': case.get('original'), 'patch': case.get('twoWay')}
        if 'expectedError' in case:
            a['error'] = case['expectedError']
        else:
            a['expected'] = two_way_expected
        applications.append(a)
    if case.get('threeWay') is not None and case.get('result') is not None:
        applications.append({'set': set_name, 'description': d + ' (three-way)', 'sorted': sort,
                             'document': case.get('current'), 'patch': case.get('threeWay'),
                             'expected': case['result']})

for c in yaml_block('customStrategicMergePatchTestCaseData'):
    add('customStrategicMergePatchTestCaseData', c, True)
for c in raw_cases('customStrategicMergePatchRawTestCases'):
    add('customStrategicMergePatchRawTestCases', c, False)
for c in yaml_block('createStrategicMergePatchTestCaseData'):
    add('createStrategicMergePatchTestCaseData', c, True)
for c in raw_cases('strategicMergePatchRawTestCases'):
    add('strategicMergePatchRawTestCases', c, False)
json.dump(applications, sys.stdout, indent=1)
print(len(applications), file=sys.stderr)
