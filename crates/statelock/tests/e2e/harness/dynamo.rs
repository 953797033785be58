//! DynamoDB lock tables on moto (which serves S3 and DynamoDB on one port), set up and read
//! with boto3, and Terraform working directories using `backend "s3"` with `dynamodb_table`
//! against them (spec §6).

use std::process::Output;
use std::time::{Duration, Instant};

use statelock_test_support::{S3Server, Terraform, unique_name};

use super::{S3Locking, Workdir, statelock_command};

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
        server.create_lock_table(&table);
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
        self.server.object(&self.bucket, key)
    }

    /// A working directory with `backend "s3"` and `dynamodb_table` for `key`, initialised:
    /// Terraform 1.0.3 locks with the table only; Terraform 1.15.5 also takes the `.tflock`
    /// lock (`use_lockfile`), its own dual locking (spec §2.7).
    pub fn terraform(&self, terraform: Terraform, key: &str) -> Workdir {
        let w = self.terraform_dir(terraform, key);
        w.ok(&["init", "-input=false"]);
        w
    }

    /// [`Setup::terraform`] before `terraform init`.
    pub fn terraform_dir(&self, terraform: Terraform, key: &str) -> Workdir {
        let locking = S3Locking {
            use_lockfile: terraform == Terraform::V1_15_5,
            dynamodb_table: Some(self.table.clone()),
        };
        Workdir::s3_uninitialised(terraform, self.server, &self.bucket, key, &locking)
    }

    /// `statelock migrate dynamodb` on this table and bucket, with `extra` arguments.
    pub fn migrate(&self, extra: &[&str]) -> Output {
        let endpoint = &self.server.endpoint;
        statelock_command()
            .args(["migrate", "dynamodb", "--table", &self.table])
            .arg(format!("--store=s3://{}", self.bucket))
            .arg(format!("--dynamodb-endpoint={endpoint}"))
            .arg(format!("--s3-endpoint={endpoint}"))
            .arg("--s3-path-style")
            .args(extra)
            .envs(self.server.aws_env())
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

/// Runs a boto3 script with `ddb`, a DynamoDB client for `server`, defined.
pub fn boto3(server: &S3Server, script: &str, args: &[&str]) -> String {
    server.boto3(&format!("{DYNAMO_PRELUDE}\n{script}"), args)
}
