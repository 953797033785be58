//! DynamoDB lock tables on moto (which serves S3 and DynamoDB on one port), set up and read
//! with boto3, and Terraform 1.0.3 working directories using `backend "s3"` with
//! `dynamodb_table` against them (spec §6).

use std::process::{Child, ChildStdin, Output, Stdio};
use std::time::{Duration, Instant};

use statelock_test_support::{S3Server, unique_name};

use super::{Workdir, text};

const DYNAMO_PRELUDE: &str = r#"
ddb = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1")
"#;

/// A bucket and a lock table on moto.
pub struct Setup {
    pub server: &'static S3Server,
    pub bucket: String,
    pub table: String,
}

impl Setup {
    /// A fresh versioned bucket and a fresh table keyed by `LockID` (S), as Terraform's docs
    /// create it.
    pub fn new(server: &'static S3Server) -> Setup {
        let bucket = unique_name("statelock-ddb");
        server.create_bucket(&bucket, true);
        let table = unique_name("tf-locks");
        boto3(
            server,
            r#"
ddb.create_table(
    TableName=sys.argv[1],
    KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
"#,
            &[&table],
        );
        Setup {
            server,
            bucket,
            table,
        }
    }

    /// Every item, as `{attribute: string value}` maps sorted by LockID.
    pub fn items(&self) -> Vec<serde_json::Value> {
        let out = boto3(
            self.server,
            r#"
items, start = [], None
while True:
    kw = {"TableName": sys.argv[1], "ConsistentRead": True}
    if start:
        kw["ExclusiveStartKey"] = start
    page = ddb.scan(**kw)
    items += [{k: v["S"] for k, v in i.items()} for i in page["Items"]]
    start = page.get("LastEvaluatedKey")
    if not start:
        break
print(json.dumps(sorted(items, key=lambda i: i["LockID"])))
"#,
            &[&self.table],
        );
        serde_json::from_str(&out).unwrap()
    }

    /// The item with this LockID, if any.
    pub fn item(&self, lock_id: &str) -> Option<serde_json::Value> {
        self.items().into_iter().find(|i| i["LockID"] == lock_id)
    }

    /// Puts an item of string attributes, as another client would.
    pub fn put_item(&self, attributes: &[(&str, &str)]) {
        let json = serde_json::to_string(
            &attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .unwrap();
        boto3(
            self.server,
            r#"
ddb.put_item(TableName=sys.argv[1], Item={k: {"S": v} for k, v in json.loads(sys.argv[2]).items()})
"#,
            &[&self.table, &json],
        );
    }

    /// Puts an object with boto3 (a client that never updates digests).
    pub fn put_object(&self, key: &str, body: &str) {
        self.server.boto3(
            "s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=sys.argv[3].encode())",
            &[&self.bucket, key, body],
        );
    }

    /// An object's body, or `None`.
    pub fn object(&self, key: &str) -> Option<String> {
        let out = self.server.boto3(
            r#"
try:
    print(json.dumps(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])["Body"].read().decode()))
except s3.exceptions.NoSuchKey:
    print("null")
"#,
            &[&self.bucket, key],
        );
        serde_json::from_str(&out).unwrap()
    }

    /// A Terraform 1.0.3 working directory with `backend "s3"` and `dynamodb_table` for `key`,
    /// initialised.
    pub fn terraform(&self, key: &str) -> Workdir {
        let w = self.terraform_dir(key);
        w.ok(&["init", "-input=false"]);
        w
    }

    /// [`Setup::terraform`] before `terraform init`.
    pub fn terraform_dir(&self, key: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = &self.server.endpoint;
        std::fs::write(
            dir.path().join("main.tf"),
            format!(
                r#"terraform {{
  backend "s3" {{
    bucket                      = "{bucket}"
    key                         = "{key}"
    region                      = "us-east-1"
    endpoint                    = "{endpoint}"
    dynamodb_endpoint           = "{endpoint}"
    dynamodb_table              = "{table}"
    force_path_style            = true
    skip_credentials_validation = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
  }}
}}
variable "n" {{
  default = 0
}}
output "n" {{
  value = var.n
}}
"#,
                bucket = self.bucket,
                table = self.table,
            ),
        )
        .unwrap();
        Workdir {
            dir,
            env: super::owned_aws_env(self.server),
        }
    }

    /// `statelock migrate dynamodb` on this table and bucket, with `extra` arguments.
    pub fn migrate(&self, extra: &[&str]) -> Output {
        let endpoint = &self.server.endpoint;
        std::process::Command::new(env!("CARGO_BIN_EXE_statelock"))
            .args(["migrate", "dynamodb", "--table", &self.table])
            .arg(format!("--store=s3://{}", self.bucket))
            .arg(format!("--dynamodb-endpoint={endpoint}"))
            .arg(format!("--s3-endpoint={endpoint}"))
            .arg("--s3-path-style")
            .args(extra)
            .envs(self.server.aws_env())
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    }

    /// Polls until `check` holds for the table's items, or panics after 60 s.
    pub fn wait_for_items(&self, what: &str, check: impl Fn(&[serde_json::Value]) -> bool) {
        let start = Instant::now();
        loop {
            let items = self.items();
            if check(&items) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; items: {items:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A `terraform apply` that holds its lock while it waits for approval on stdin.
pub struct PendingApply {
    /// Taken by `answer`; killed on drop if still there.
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl PendingApply {
    /// Starts `terraform apply -var n=<n>` in `w` without -auto-approve: Terraform takes the
    /// lock, plans, and waits for "yes".
    pub fn start(w: &Workdir, n: usize) -> PendingApply {
        let var = format!("n={n}");
        let mut child = w
            .command(&["apply", "-input=true", "-var", &var])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        PendingApply {
            child: Some(child),
            stdin,
        }
    }

    /// Answers the prompt (`yes` applies, anything else cancels) and waits for the end.
    pub fn answer(mut self, answer: &str) -> Output {
        use std::io::Write;
        let mut stdin = self.stdin.take().unwrap();
        writeln!(stdin, "{answer}").unwrap();
        drop(stdin);
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        assert!(
            answer != "yes" || out.status.success(),
            "the held apply failed:\n{}",
            text(&out)
        );
        out
    }
}

impl Drop for PendingApply {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a boto3 script with `ddb`, a DynamoDB client for `server`, defined.
pub fn boto3(server: &S3Server, script: &str, args: &[&str]) -> String {
    server.boto3(&format!("{DYNAMO_PRELUDE}\n{script}"), args)
}
