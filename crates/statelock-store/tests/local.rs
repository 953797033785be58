//! The conformance suite against the local-disk store, plus what only a directory can get
//! wrong: escaping the root, symbolic links, foreign directories, leftovers of crashed writers.

use std::fs;

use bytes::Bytes;
use statelock_store::conformance::Profile;
use statelock_store::{
    DeleteMode, LocalStore, ObjectStore, ObjectStoreExt, PutMode, PutOptions, StoreError,
};

statelock_store::conformance_tests!(
    async {
        // Leaked so the directory outlives the store for the whole test.
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        __Arc::new(LocalStore::open(dir.path()).unwrap().with_page_size(7))
            as __Arc<dyn __ObjectStore>
    },
    Profile::FULL
);

fn put_opts() -> PutOptions {
    PutOptions::json(PutMode::Overwrite)
}

#[tokio::test]
async fn workspace_keys_are_plain_files_under_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let meta = store
        .put(
            "env:/dev/app.tfstate",
            Bytes::from_static(b"{}"),
            put_opts(),
        )
        .await
        .unwrap();
    let file = fs::read(dir.path().join("objects/env:.d/dev.d/app.tfstate.o")).unwrap();
    let header = format!("statelock-object 1 {} application/json\n", meta.version);
    assert_eq!(file, [header.as_bytes(), b"{}"].concat());
    assert_eq!(store.list_all("env:/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_key_can_be_both_object_and_prefix_as_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    for key in ["a/b", "a", "a.d", "a/b/c", "a.o"] {
        store.put(key, Bytes::from(key), put_opts()).await.unwrap();
    }
    for key in ["a/b", "a", "a.d", "a/b/c", "a.o"] {
        assert_eq!(store.get(key).await.unwrap().body, key);
    }
    let listed: Vec<String> = store
        .list_all("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, ["a", "a.d", "a.o", "a/b", "a/b/c"]);
    assert!(store.get("a/b/c/d").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn symlinks_inside_the_store_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(
        outside.path().join("secret"),
        b"statelock-object 1 0123456789abcdef0123456789abcdef \nsecret",
    )
    .unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret"),
        dir.path().join("objects/leak.o"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("objects/dir.d")).unwrap();
    let err = store.get("leak").await.unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // Through a linked directory: neither read nor removed.
    fs::write(
        outside.path().join("victim.o"),
        b"statelock-object 1 0123456789abcdef0123456789abcdef \nvictim",
    )
    .unwrap();
    for read in [
        store.get("dir/victim").await.map(drop),
        store.head("dir/victim").await.map(drop),
    ] {
        let err = read.unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
    let err = store
        .delete("dir/victim", DeleteMode::Unconditional)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        outside.path().join("victim.o").exists(),
        "deleted outside the store"
    );
    let err = store
        .put("dir/x", Bytes::new(), put_opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(!outside.path().join("x").exists());
    assert!(store.list_all("").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_foreign_directory_is_refused_and_reopening_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let err = LocalStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("not a statelock store"), "{err}");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing was created"
    );

    let fresh = dir.path().join("new/nested");
    let store = LocalStore::open(&fresh).unwrap();
    store
        .put("k", Bytes::from_static(b"v"), put_opts())
        .await
        .unwrap();
    drop(store);
    let again = LocalStore::open(&fresh).unwrap();
    assert_eq!(again.get("k").await.unwrap().body, "v");
}

#[tokio::test]
async fn damaged_files_are_reported_and_can_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    fs::write(dir.path().join("objects/torn.o"), b"no header").unwrap();
    let err = store.get("torn").await.unwrap_err();
    assert!(err.to_string().contains("not a statelock object"), "{err}");
    assert!(matches!(
        store
            .put("torn", Bytes::new(), PutOptions::new(PutMode::Create))
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    store
        .delete("torn", DeleteMode::Unconditional)
        .await
        .unwrap();
    assert!(store.get("torn").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn old_partials_are_cleaned_on_open_and_young_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    drop(LocalStore::open(dir.path()).unwrap());
    let old = dir.path().join("tmp/old.partial");
    let young = dir.path().join("tmp/young.partial");
    fs::write(&old, b"x").unwrap();
    fs::write(&young, b"x").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    drop(LocalStore::open(dir.path()).unwrap());
    assert!(!old.exists());
    assert!(young.exists());
}

#[tokio::test]
async fn deleting_the_last_object_removes_empty_directories() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    store.put("x/y/z", Bytes::new(), put_opts()).await.unwrap();
    store
        .delete("x/y/z", DeleteMode::Unconditional)
        .await
        .unwrap();
    assert!(!dir.path().join("objects/x.d").exists());
    store.put("x/y/z", Bytes::new(), put_opts()).await.unwrap();
}
